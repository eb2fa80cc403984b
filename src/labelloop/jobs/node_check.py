"""What each node of a deployment sees: ``labelloop serve --check``.

A team server keeps its records in one database and its projects in one folder (``home``); every
node that runs jobs (the server with its local worker, or each Ray node) must reach both, with the
same path. :func:`node_report` answers, for the node it runs on: its host name, Python, labelloop,
Ray and torch versions, the GPUs torch sees, and three checks -- the database answers, the home
folder is there and writable (jobs write models into it), and a stored image reads. On the nodes
nothing is created or changed (a SQLite file they do not see is reported, not made); the server
opens its database as ``serve`` would, so a new server's file exists before its nodes look for it.
"""

from __future__ import annotations

import os
import platform
import socket
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from labelloop.errors import LabelloopError

__all__ = ["check_database", "check_home", "check_image", "deployment_report", "node_report", "probe_image"]


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _gpus() -> int:
    if _version("torch") is None:
        return 0
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _check(name: str, ok: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "ok": ok, "detail": detail}


def check_database(url: str) -> dict[str, Any]:
    """The database answers ``SELECT 1`` (a SQLite file must already exist: it is opened read-only)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except (ValueError, SQLAlchemyError) as exc:
        return _check("database", False, f"not a database URL ({exc})")
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        if not path.is_file():
            return _check("database", False, f"no SQLite file at {path}: this node does not see the server's "
                                             "folder (use a shared path, or PostgreSQL for a cluster)")
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    engine = create_engine(url, connect_args={"connect_timeout": 10} if parsed.get_backend_name() == "postgresql"
                           else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]
        return _check("database", False, f"{shown} does not answer: {reason}")
    finally:
        engine.dispose()
    return _check("database", True, shown)


def check_home(home: str) -> dict[str, Any]:
    """The server folder is there and this node may write into it."""
    path = Path(home)
    if not path.is_dir():
        return _check("home", False, f"{path} is not a folder on this node: mount the server's folder at the "
                                     "same path on every node")
    try:
        with tempfile.NamedTemporaryFile(dir=path, prefix=".node-check-"):
            pass
    except OSError as exc:
        return _check("home", False, f"{path} is not writable here ({exc.strerror}): jobs write models into it")
    return _check("home", True, str(path))


def check_image(path: str | None) -> dict[str, Any]:
    """A stored image file reads (``None``: no image stored yet, nothing to check)."""
    if path is None:
        return _check("images", True, "no image stored yet")
    try:
        with open(path, "rb") as f:
            f.read(64)
    except OSError as exc:
        return _check("images", False, f"cannot read {path} ({exc.strerror}): jobs on this node could not read "
                                       "the project's images; put the projects on storage every node mounts")
    return _check("images", True, path)


def node_report(home: str, database_url: str, image: str | None) -> dict[str, Any]:
    """This node: versions, GPUs and the three checks (see the module docstring)."""
    checks = [check_database(database_url), check_home(home), check_image(image)]
    return {"host": socket.gethostname(), "pid": os.getpid(), "python": platform.python_version(),
            "labelloop": _version("labelloop"), "ray": _version("ray"), "torch": _version("torch"),
            "gpus": _gpus(), "checks": checks, "ok": all(c["ok"] for c in checks)}


def probe_image(registry: Any) -> str | None:
    """The file of one stored image of the server's projects (the first project that has one)."""
    from labelloop.services.datasets import image_path
    from labelloop.store.tables import Image

    for slug in registry.slugs():
        ctx = registry.open(slug)
        with ctx.store.session() as s:
            stored = s.execute(select(Image.storage_path).where(Image.project_id == ctx.id).limit(1)).scalar()
        if stored is not None:
            return str(image_path(ctx, stored))
    return None


def deployment_report(home: Path, database_url: str, *, executor: str, ray_address: str | None = None
                      ) -> dict[str, Any]:
    """``{"executor", "image", "nodes": [node_report + "role"], "ok"}``: the server, then each Ray node."""
    from labelloop.services.projects import ProjectRegistry

    image = None
    try:  # the server's database as `serve` would open it (a new server's SQLite file is made now)
        registry = ProjectRegistry(home, database_url)
        try:
            registry.store()
            image = probe_image(registry)
        finally:
            registry.close()
    except (LabelloopError, SQLAlchemyError, OSError):
        image = None  # the server node's own database check says why
    nodes = [{"role": "server", **node_report(str(home), database_url, image)}]
    if executor == "ray":
        from labelloop.jobs.ray_executor import ray_node_reports

        nodes += [{"role": "ray node", **r} for r in ray_node_reports(home, database_url, image, ray_address)]
    return {"executor": executor, "image": image, "nodes": nodes, "ok": all(n["ok"] for n in nodes)}
