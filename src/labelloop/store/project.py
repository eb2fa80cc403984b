"""A project is a folder: ``labelloop.json`` (its identity), ``labelloop.db`` (SQLite, unless its
:class:`Database` points at a server), ``images/`` (content-addressed copies), ``models/``
(training runs) and ``cache/`` (derived files, such as image tiles, safe to delete).

The store is told where its database is; it reads no settings. Callers that follow the
``LABELLOOP_*`` settings use :func:`labelloop.services.projects.new_project` and
:func:`~labelloop.services.projects.load_project`."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from labelloop.core.records import clean_class_name
from labelloop.errors import ConfigError, ConflictError, InvalidInputError, NotFoundError
from labelloop.store.db import Store, sqlite_url
from labelloop.store.tables import LabelClass, Layer, Project

__all__ = ["TASKS", "Database", "ProjectContext", "clean_labels", "context_for", "default_layer_name",
           "find_project_root",
           "init_project", "open_project", "palette_color"]

TASKS = ("detect", "segment", "regions")
MARKER = "labelloop.json"
#: the project's SQLite database in its folder (unless LABELLOOP_DATABASE_URL names a server)
DB_FILE = "labelloop.db"
_PALETTE = ["#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45",
            "#fabed4", "#469990", "#dcbeff", "#9a6324", "#fffac8", "#800000", "#aaffc3", "#808000"]


def palette_color(index: int) -> str:
    return _PALETTE[index % len(_PALETTE)]


def default_layer_name(task: str) -> str:
    """The name of a project's first layer: ``regions`` for a regions project, else ``objects``."""
    return "regions" if task == "regions" else "objects"


@dataclass(frozen=True)
class Database:
    """Where a project's rows live.

    Attributes:
        url: a SQLAlchemy URL (``postgresql://...``, ``sqlite:///...``); ``None``: the project
            folder's own ``labelloop.db``.
        sqlite_synchronous: SQLite's ``PRAGMA synchronous`` (``NORMAL`` or ``FULL``).
    """

    url: str | None = None
    sqlite_synchronous: str = "NORMAL"

    def url_for(self, root: Path) -> str:
        return self.url or sqlite_url(root / DB_FILE)

    def open(self, root: Path) -> Store:
        return Store(self.url_for(root), sqlite_synchronous=self.sqlite_synchronous)


@dataclass
class ProjectContext:
    """An open project layer: where the project's files live and which database row holds the layer.

    ``id`` is the row of the layer's images, classes, annotations and models (the project's own row
    for its first layer), ``task`` the layer's kind; ``owner_id`` is the project's row.
    """

    root: Path
    store: Store
    id: int
    uid: str
    name: str
    task: str
    #: the layer's name (a project of one layer: ``objects`` or ``regions``)
    layer: str = ""
    #: the project the layer belongs to; 0 = ``id`` (the project's first layer)
    owner_id: int = 0

    @property
    def project_id(self) -> int:
        """The project's own row (the same for every layer of it)."""
        return self.owner_id or self.id

    @property
    def is_first_layer(self) -> bool:
        """Whether this is the project's first layer (the project's own row)."""
        return self.id == self.project_id

    @property
    def layer_ref(self) -> str:
        """How a job names this layer: ``""`` for the first layer (the project itself: found under any
        name it is given later, even by a process whose open context still has the old one), else the
        layer's name."""
        return "" if self.is_first_layer else self.layer

    @property
    def images_dir(self) -> Path:
        return self.root / "images"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def cache_dir(self) -> Path:
        """Files derived from the others (remade on demand when deleted)."""
        return self.root / "cache"

    def close(self) -> None:
        self.store.dispose()


def find_project_root(start: Path) -> Path:
    """``start`` or the nearest parent holding ``labelloop.json``."""
    start = start.resolve()
    if not start.exists():
        raise NotFoundError(f"the folder {start} does not exist",
                            f"pass --project the folder of an existing project, or create one: labelloop init {start}")
    for folder in (start, *start.parents):
        if (folder / MARKER).is_file():
            return folder
    raise NotFoundError(f"no labelloop project in {start} or its parents",
                        "run `labelloop init` here, or pass --project DIR")


def init_project(root: Path, *, task: str = "detect", name: str | None = None,
                 labels: list[str] | None = None, database: Database | None = None) -> ProjectContext:
    """Create a project folder (or refuse if one is there) with its rows in ``database`` (default:
    the folder's own SQLite file) and its classes."""
    if task not in TASKS:
        raise InvalidInputError(f"unknown task {task!r}", f"expected one of: {', '.join(TASKS)}")
    root = root.resolve()
    if (root / MARKER).exists():
        raise ConflictError(f"{root} already holds a labelloop project", "use it, or pick another folder")
    names = clean_labels(labels or [])
    if task == "regions" and "background" not in names:
        names.insert(0, "background")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"cannot create the project folder {root}: {exc.strerror or exc}",
                                "pick a folder you can write to") from exc
    store = (database or Database()).open(root)
    uid = uuid.uuid4().hex
    name = name or root.name
    with store.session() as s:
        project = Project(uid=uid, name=name, task=task, settings={})
        s.add(project)
        s.flush()
        for i, label in enumerate(names):
            s.add(LabelClass(project_id=project.id, name=label, color=palette_color(i), position=i))
        s.add(Layer(project_id=project.id, store_id=project.id, name=default_layer_name(task), kind=task,
                    position=0))
        pid = project.id
    tmp = root / (MARKER + ".tmp")
    tmp.write_text(json.dumps({"uid": uid, "name": name, "task": task}, indent=2))
    tmp.replace(root / MARKER)
    (root / "images").mkdir(exist_ok=True)
    return ProjectContext(root=root, store=store, id=pid, uid=uid, name=name, task=task,
                          layer=default_layer_name(task), owner_id=pid)


def open_project(path: Path | None = None, *, database: Database | None = None) -> ProjectContext:
    """The project in ``path`` (default: the working folder) or a parent, on ``database`` (default:
    the folder's own SQLite file)."""
    root = find_project_root(path or Path.cwd())
    try:
        meta = json.loads((root / MARKER).read_text())
        uid = meta["uid"]
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"{root / MARKER} is damaged ({exc})", "restore it from a backup") from exc
    database = database or Database()
    if not database.url and not (root / DB_FILE).is_file():  # opening it would make an empty one
        raise NotFoundError(f"the project's database {root / DB_FILE} is missing",
                            "restore it from a backup (the images are still in images/), or set "
                            "LABELLOOP_DATABASE_URL if the project lives in a database server")
    store = database.open(root)
    with store.session() as s:
        project = s.scalars(select(Project).where(Project.uid == uid)).first()
        if project is None:
            store.dispose()
            raise NotFoundError(f"project {uid} of {root} is not in the database {store.url}",
                                "is LABELLOOP_DATABASE_URL pointing at the right database?")
        return context_for(root, store, s, project)


def context_for(root: Path, store: Store, s: Session, row: Project, layer: Layer | None = None) -> ProjectContext:
    """The context of project ``row`` on its ``layer`` (default: its first layer)."""
    if layer is None:
        layer = s.scalars(select(Layer).where(Layer.store_id == row.id)).first()
    if layer is None or layer.store_id == row.id:
        return ProjectContext(root=root, store=store, id=row.id, uid=row.uid, name=row.name, task=row.task,
                              layer=layer.name if layer else default_layer_name(row.task), owner_id=row.id)
    return ProjectContext(root=root, store=store, id=layer.store_id, uid=row.uid, name=row.name, task=layer.kind,
                          layer=layer.name, owner_id=row.id)


def clean_labels(labels: list[str]) -> list[str]:
    out: list[str] = []
    for raw in labels:
        if not raw.strip():
            continue
        label = clean_class_name(raw)
        if label in out:
            raise InvalidInputError(f"class {label!r} is listed twice", "give each class once")
        out.append(label)
    return out
