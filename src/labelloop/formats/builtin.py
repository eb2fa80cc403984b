"""Imports every format module in this package so each registers itself.

A new format is a new module here that decorates its class with ``@register_format``;
nothing central changes.
"""

import importlib
import pkgutil

import labelloop.formats as _pkg

_SKIP = {"base", "builtin"}

for _info in pkgutil.iter_modules(_pkg.__path__):
    if _info.name not in _SKIP and not _info.name.startswith("_"):
        importlib.import_module(f"labelloop.formats.{_info.name}")
