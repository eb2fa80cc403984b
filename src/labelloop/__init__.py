"""labelloop: image annotation with a model in the loop.

Importing this package does nothing but define names; heavy libraries (torch,
onnxruntime, fastapi) are imported inside the adapters that need them. The Python
API (:mod:`labelloop.facade`) is here too, loaded on first use::

    import labelloop as ll
    p = ll.open("my-project")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Model", "Project", "__version__", "init", "open"]

if TYPE_CHECKING:
    from labelloop.facade import Model, Project, init, open


def __getattr__(name: str) -> Any:
    if name in {"Model", "Project", "init", "open"}:
        from labelloop import facade

        return getattr(facade, name)
    raise AttributeError(f"module 'labelloop' has no attribute {name!r}")
