"""Job kinds: a name mapped to an importable function ``fn(job: JobContext) -> dict``.

Kinds are registered by name and import path, so any executor (the local Huey worker today, a Ray
cluster later) can run a job from ``(kind, params)`` alone. Extra kinds come from modules named in
``LABELLOOP_JOB_PLUGINS`` (comma separated), imported by the server and the worker alike; each
calls :func:`register_job_kind` when imported. A duplicate name is an error.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labelloop.errors import ConfigError, InvalidInputError, JobError

__all__ = ["JobKind", "get_job_kind", "job_kinds", "load_plugins", "register_job_kind"]


@dataclass(frozen=True)
class JobKind:
    """``target`` is ``"package.module:function"``; ``permission`` the action a user needs to start it."""

    name: str
    target: str
    title: str = ""
    permission: str = "jobs.run"
    needs_project: bool = True

    def load(self) -> Callable[..., dict[str, Any] | None]:
        module_name, _, func_name = self.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise JobError(f"job kind {self.name!r} is not available: module {exc.name} is not installed",
                           "install the extra it needs (e.g. labelloop[train]) and restart the server") from exc
        try:
            return getattr(module, func_name)  # type: ignore[no-any-return]
        except AttributeError as exc:
            raise JobError(f"job kind {self.name!r}: {module_name} has no function {func_name!r}") from exc


_KINDS: dict[str, JobKind] = {}
_BUILTINS = {
    "train": ("labelloop.jobs.kinds:train", "Train a model"),
    "sweep": ("labelloop.jobs.kinds:sweep", "Train several variants"),
    "preannotate": ("labelloop.jobs.kinds:preannotate", "Pre-annotate images"),
    "suggest": ("labelloop.jobs.kinds:suggest", "Suggest images to annotate next"),
    "qa": ("labelloop.jobs.kinds:qa", "Find likely label errors"),
}
_loaded = False


def register_job_kind(name: str, target: str, *, title: str = "", permission: str = "jobs.run",
                      needs_project: bool = True) -> JobKind:
    if not name or len(name) > 32 or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"invalid job kind name {name!r}", "use up to 32 letters, digits, - and _")
    if ":" not in target:
        raise ConfigError(f"job kind {name!r}: target {target!r} is not 'module:function'")
    if name in _KINDS and _KINDS[name].target != target:
        raise ConfigError(f"job kind {name!r} is registered already (as {_KINDS[name].target})",
                          "pick another name")
    kind = JobKind(name=name, target=target, title=title or name, permission=permission,
                   needs_project=needs_project)
    _KINDS[name] = kind
    return kind


def load_plugins() -> None:
    """Register the built-in kinds and import the ``LABELLOOP_JOB_PLUGINS`` modules (once)."""
    global _loaded
    if _loaded:
        return
    for name, (target, title) in _BUILTINS.items():
        register_job_kind(name, target, title=title)
    for module in filter(None, (m.strip() for m in os.environ.get("LABELLOOP_JOB_PLUGINS", "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"cannot import job plugin module {module!r}: {exc}",
                              "fix LABELLOOP_JOB_PLUGINS or the module's PYTHONPATH") from exc
    _loaded = True


def get_job_kind(name: str) -> JobKind:
    load_plugins()
    if name not in _KINDS:
        raise InvalidInputError(f"unknown job kind {name!r}", f"expected one of: {', '.join(sorted(_KINDS))}")
    return _KINDS[name]


def job_kinds() -> list[JobKind]:
    load_plugins()
    return sorted(_KINDS.values(), key=lambda k: k.name)
