"""The projects a server holds: normal project folders under ``HOME/projects/<slug>/`` on the
server's database, plus CLI project folders registered with ``serve --project DIR`` (kept on
their own database). Projects are addressed by their slug (the folder name).

A :class:`ProjectRegistry` caches one :class:`Store` per database URL, so every request reuses
the same engine and connection pool instead of opening the database again.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from labelloop.core.records import LABELLED_STATUSES, ReviewState
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.services.layers import parent_context
from labelloop.store.db import Store, sqlite_url
from labelloop.store.project import MARKER, Database, ProjectContext, context_for, init_project, open_project
from labelloop.store.tables import Annotation, Image, Project, TrainedModel, is_ground_truth

__all__ = ["ProjectRegistry", "ServerPaths", "current_model", "load_project", "new_project", "next_steps",
           "project_database", "project_overview", "server_database_url", "slugify"]

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def project_database(url: str | None = None) -> Database:
    """The database the settings name: ``url``, else ``LABELLOOP_DATABASE_URL``, else each project
    folder's own SQLite file; with ``LABELLOOP_SQLITE_SYNCHRONOUS``."""
    from labelloop.settings import get_settings

    settings = get_settings()
    return Database(url=url or settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)


def new_project(root: Path, *, task: str = "detect", name: str | None = None,
                labels: list[str] | None = None) -> ProjectContext:
    """:func:`labelloop.store.project.init_project` on the database the settings name."""
    return init_project(root, task=task, name=name, labels=labels, database=project_database())


def load_project(path: Path | None = None) -> ProjectContext:
    """:func:`labelloop.store.project.open_project` on the database the settings name."""
    return open_project(path, database=project_database())


def slugify(name: str) -> str:
    """``"My Cats!"`` -> ``"my-cats"``: lower case letters, digits, ``-`` and ``_``."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", name.strip().lower()).strip("-_")[:63]
    if not slug:
        raise InvalidInputError(f"cannot make a folder name from {name!r}", "use letters or digits in the name")
    return slug


@dataclass(frozen=True)
class ServerPaths:
    """Where a server keeps its files."""

    home: Path

    @property
    def projects(self) -> Path:
        return self.home / "projects"

    @property
    def database(self) -> Path:
        return self.home / "server.db"

    @property
    def queue(self) -> Path:
        return self.home / "queue.db"

    @property
    def external(self) -> Path:
        return self.home / "external-projects.json"

    @property
    def tmp(self) -> Path:
        return self.home / "tmp"


class ProjectRegistry:
    """Create, list, open and delete the server's projects."""

    def __init__(self, home: Path, database_url: str) -> None:
        self.paths = ServerPaths(home)
        self.database_url = database_url
        self._stores: dict[str, Store] = {}
        self._contexts: dict[str, ProjectContext] = {}
        self._lock = threading.Lock()

    # -- stores ----------------------------------------------------------------------------
    def store(self, url: str | None = None) -> Store:
        """The (cached) store for ``url``; the server's own database by default."""
        url = url or self.database_url
        with self._lock:
            if url not in self._stores:
                self._stores[url] = Store(url, sqlite_synchronous=project_database().sqlite_synchronous)
            return self._stores[url]

    def close(self) -> None:
        with self._lock:
            for store in self._stores.values():
                store.dispose()
            self._stores.clear()
            self._contexts.clear()

    # -- external folders ------------------------------------------------------------------
    def _external(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self.paths.external.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise InvalidInputError(f"{self.paths.external} is damaged ({exc})", "fix or delete it") from exc

    def register_folder(self, root: Path, database_url: str = "") -> str:
        """Serve an existing CLI project folder too (on the database the CLI uses for it)."""
        root = root.resolve()
        if not (root / MARKER).is_file():
            raise NotFoundError(f"no labelloop project in {root}", "create one with `labelloop init DIR`")
        external = self._external()
        for slug, entry in external.items():
            if entry["root"] == str(root):
                return slug
        slug = base = slugify(root.name)
        n = 2
        while slug in external or (self.paths.projects / slug).exists():
            slug, n = f"{base}-{n}", n + 1
        external[slug] = {"root": str(root), "database_url": Database(url=database_url or None).url_for(root)}
        self.paths.home.mkdir(parents=True, exist_ok=True)
        tmp = self.paths.external.with_suffix(".tmp")
        tmp.write_text(json.dumps(external, indent=2))
        tmp.replace(self.paths.external)
        self.open(slug)  # fails now, not on the first request, if the folder cannot be opened
        return slug

    def _locate(self, slug: str) -> tuple[Path, str, bool]:
        """(root, database URL, external?) of a project."""
        if not _SLUG.match(slug):
            raise NotFoundError(f"no project {slug!r}", "project names are lower case letters, digits, - and _")
        root = self.paths.projects / slug
        if (root / MARKER).is_file():
            return root, self.database_url, False
        entry = self._external().get(slug)
        if entry is not None:
            return Path(entry["root"]), entry["database_url"], True
        raise NotFoundError(f"no project {slug!r}", "see the project list")

    # -- use cases ---------------------------------------------------------------------------
    def open(self, slug: str) -> ProjectContext:
        """The project's context, cached: call this per request, it costs a dict look-up."""
        cached = self._contexts.get(slug)
        if cached is not None:
            return cached
        root, url, _ = self._locate(slug)
        try:
            meta = json.loads((root / MARKER).read_text())
            uid = meta["uid"]
        except (OSError, ValueError, KeyError) as exc:
            raise NotFoundError(f"project {slug!r} cannot be read ({exc})", f"check {root / MARKER}") from exc
        store = self.store(url)
        with store.session() as s:
            row = s.scalars(select(Project).where(Project.uid == uid)).first()
            if row is None:
                raise NotFoundError(f"project {slug!r} ({uid}) is not in its database {store.url}",
                                    "is LABELLOOP_DATABASE_URL pointing at the right database?")
            ctx = context_for(root, store, s, row)
        self._contexts[slug] = ctx
        return ctx

    def create(self, name: str, *, task: str = "detect", labels: list[str] | None = None,
               slug: str | None = None) -> dict[str, Any]:
        slug = slugify(slug or name)
        root = self.paths.projects / slug
        if root.exists() or slug in self._external():
            raise ConflictError(f"a project named {slug!r} exists already", "pick another name")
        self.paths.projects.mkdir(parents=True, exist_ok=True)
        ctx = init_project(root, task=task, name=name.strip() or slug, labels=labels,
                           database=project_database(self.database_url))
        ctx.close()  # it opened its own store; requests use the shared one
        return self.summary(slug)

    def slugs(self) -> list[str]:
        local = sorted(p.name for p in self.paths.projects.glob("*") if (p / MARKER).is_file()) \
            if self.paths.projects.is_dir() else []
        return local + sorted(s for s in self._external() if s not in local)

    def list(self) -> list[dict[str, Any]]:
        out = []
        for slug in self.slugs():
            try:
                out.append(self.summary(slug))
            except NotFoundError as err:  # a broken folder must not hide the others
                out.append({"slug": slug, "name": slug, "error": err.message})
        return out

    def summary(self, slug: str) -> dict[str, Any]:
        ctx = self.open(slug)
        _, _, external = self._locate(slug)
        with ctx.store.session() as s:
            images = s.scalar(select(func.count()).select_from(Image).where(Image.project_id == ctx.id)) or 0
            proposals = s.scalar(select(func.count()).select_from(Annotation).where(
                Annotation.project_id == ctx.id, Annotation.review_state == ReviewState.PROPOSED)) or 0
            models = s.scalar(select(func.count()).select_from(TrainedModel).where(
                TrainedModel.project_id == ctx.id)) or 0
            created = s.scalar(select(Project.created_at).where(Project.id == ctx.id))
        return {"slug": slug, "name": ctx.name, "task": ctx.task, "uid": ctx.uid, "root": str(ctx.root),
                "external": external, "images": images, "proposals": proposals, "models": models,
                "created_at": created.isoformat() if created else None}

    def delete(self, slug: str) -> None:
        """Delete a server project (rows and folder); an external folder is only unregistered."""
        root, _, external = self._locate(slug)
        if external:
            entries = self._external()
            entries.pop(slug, None)
            self.paths.external.write_text(json.dumps(entries, indent=2))
        else:
            ctx = self.open(slug)
            with ctx.store.session() as s:
                row = s.get(Project, ctx.id)
                if row is not None:
                    s.delete(row)  # the schema cascades to classes, images, annotations, models, jobs
            trash = root.with_name(f".deleted-{slug}")
            root.replace(trash)
            shutil.rmtree(trash, ignore_errors=True)
        self._contexts.pop(slug, None)


# -- the project home: where we stand and what to do next -------------------------------------

def _headline_metric(metrics: dict[str, Any]) -> tuple[str, float] | None:
    """The mAP-like number to show for a model: map50 if there, else the first *map* metric."""
    numeric = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
    for key in ("map50", "mAP50", "map_50", "mAP@.5", "map", "mAP", "miou", "mIoU"):
        if key in numeric:
            return key, float(numeric[key])
    for key, value in numeric.items():
        if "map" in key.lower() or "iou" in key.lower():
            return key, float(value)
    return None


_FINISHED = ("ready", "interrupted")  # an interrupted run keeps its best epoch


def current_model(ctx: ProjectContext) -> dict[str, Any] | None:
    """The newest finished model of the project, with its headline metric."""
    with ctx.store.session() as s:
        row = s.scalars(select(TrainedModel).where(TrainedModel.project_id == ctx.id,
                                                   TrainedModel.status.in_(_FINISHED))
                        .order_by(TrainedModel.id.desc()).limit(1)).first()
        if row is None:
            return None
        metric = _headline_metric(row.metrics)
        return {"id": row.id, "name": row.name, "base": row.base, "round": row.round, "status": row.status,
                "metric": metric[0] if metric else None, "value": metric[1] if metric else None,
                "created_at": row.created_at.isoformat() if row.created_at else None,
                "finished_at": row.finished_at.isoformat() if row.finished_at else None}


def next_steps(stats: dict[str, Any], model: dict[str, Any] | None, new_since_model: int) -> list[dict[str, Any]]:
    """What to do next, most useful first: each ``{"action", "text", ...}`` one click from a page."""
    steps: list[dict[str, Any]] = []
    images = stats["images"]["total"]
    proposals = stats["annotations"]["proposals"]
    unlabeled = stats["images"]["by_status"].get("new", 0)
    if images == 0:
        return [{"action": "upload", "text": "Upload images to start"}]
    if proposals:
        steps.append({"action": "review", "count": proposals,
                      "text": f"Review {proposals} proposal{'s' * (proposals != 1)}"})
    missing = sorted((c for c in stats["classes"] if c["missing"] > 0), key=lambda c: -c["missing"])
    if missing and model is None:
        c = missing[0]
        steps.append({"action": "annotate", "label": c["name"], "count": c["missing"],
                      "text": f"Annotate {c['missing']} more {c['name']}"})
    if model is None and stats["ready_to_train"]:
        steps.append({"action": "train", "round": 1, "text": "Train round 1"})
    if model is not None:
        if new_since_model > 0:
            nxt = (model.get("round") or 1) + 1
            steps.append({"action": "train", "round": nxt,
                          "text": f"Train round {nxt} ({new_since_model} new annotations since round "
                                  f"{model.get('round') or 1})"})
        if unlabeled and not proposals:
            steps.append({"action": "preannotate", "count": unlabeled,
                          "text": f"Pre-annotate {unlabeled} unlabelled image{'s' * (unlabeled != 1)}"})
    if not steps and unlabeled:
        steps.append({"action": "annotate", "text": f"Annotate some of the {unlabeled} unlabelled images"})
    steps.append({"action": "next", "text": "See which images to annotate next (a random sample, each image "
                                            "with what it brings: no smarter pick has clearly done better so far)"})
    return steps


def project_overview(ctx: ProjectContext) -> dict[str, Any]:
    """Everything the project home shows, in one call."""
    from labelloop.services.stats import project_stats

    stats = project_stats(ctx)
    model = current_model(ctx)
    new_since = 0
    if model is not None and model.get("created_at"):
        from datetime import datetime

        since = datetime.fromisoformat(model["created_at"])
        with ctx.store.session() as s:
            gt = is_ground_truth()
            new_since = s.scalar(select(func.count()).select_from(Annotation).where(
                Annotation.project_id == ctx.id, gt, Annotation.updated_at > since)) or 0
    steps = next_steps(stats, model, new_since)
    parent = parent_context(ctx)
    if parent is not None and stats["images"]["total"] and not _labelled_images(parent):
        steps.insert(0, {"action": "parent", "layer": parent.layer,
                         "text": f"Label regions in layer {parent.layer} first: this layer learns and proposes "
                                 "only inside them"})
    return {"stats": stats, "model": model, "new_annotations_since_model": new_since, "next": steps}


def _labelled_images(ctx: ProjectContext) -> int:
    with ctx.store.session() as s:
        return s.scalar(select(func.count()).select_from(Image).where(
            Image.project_id == ctx.id, Image.status.in_(LABELLED_STATUSES))) or 0


def server_database_url(home: Path) -> str:
    """The server's database: ``LABELLOOP_DATABASE_URL`` if set, else ``HOME/server.db``."""
    from labelloop.settings import get_settings

    return get_settings().database_url or sqlite_url(ServerPaths(home).database)
