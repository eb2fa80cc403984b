"""SQLAlchemy ORM tables. One schema for SQLite and PostgreSQL; Alembic owns its evolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ColumnElement,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from labelloop.core.records import GROUND_TRUTH_STATES

__all__ = [
    "Annotation",
    "AnnotationEvent",
    "ApiToken",
    "Base",
    "ClassEvent",
    "Image",
    "Job",
    "LabelClass",
    "Layer",
    "ModelEpoch",
    "Project",
    "TrainedModel",
    "TrainingRegion",
    "User",
    "annotation_rle",
    "box_ring",
    "is_ground_truth",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Project(Base):
    __tablename__ = "projects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(16))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: set on the hidden project that holds a layer's rows: the project the layer belongs to
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), nullable=True,
                                                 index=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Layer(Base):
    """One feature of a project's analysis (regions, or the objects counted inside them).

    A layer has its own kind (``regions``, ``detect``, ``segment``), classes, annotations, models and
    image status. They live in the project row ``store_id``: the project itself for its first layer
    (so a project of one layer is what it always was), a hidden project (``owner_id`` = the project)
    for each other layer, holding the same images.
    """

    __tablename__ = "layers"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_layer_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    #: the layer whose regions this layer's objects live in (training and proposals stay inside them)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("layers.id", ondelete="SET NULL"), nullable=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LabelClass(Base):
    __tablename__ = "label_classes"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_class_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    color: Mapped[str] = mapped_column(String(9))
    position: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("label_classes.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ClassEvent(Base):
    """History of class changes: create, rename, merge, recolor."""

    __tablename__ = "class_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    class_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor: Mapped[str] = mapped_column(String(200), default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Image(Base):
    __tablename__ = "images"
    __table_args__ = (
        UniqueConstraint("project_id", "file_name", name="uq_image_file_name"),
        Index("ix_images_project_status", "project_id", "status"),
        Index("ix_images_project_split", "project_id", "split"),
        Index("ix_images_project_sha", "project_id", "sha256"),
        Index("ix_images_project_id", "project_id", "id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    file_name: Mapped[str] = mapped_column(String(1000))
    storage_path: Mapped[str] = mapped_column(String(2000))
    linked: Mapped[bool] = mapped_column(Boolean, default=False)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    split: Mapped[str | None] = mapped_column(String(8), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="new")
    #: why the pixels are only partly there (a truncated file), or that the file is missing or changed
    #: (``labelloop doctor --fix``); None for a whole image
    damaged: Mapped[str | None] = mapped_column(String(300), nullable=True, default=None)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class Annotation(Base):
    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_image", "image_id"),
        Index("ix_annotations_project_class", "project_id", "class_id"),
        Index("ix_annotations_project_review", "project_id", "review_state"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    class_id: Mapped[int] = mapped_column(ForeignKey("label_classes.id"))
    x1: Mapped[float] = mapped_column(Float)
    y1: Mapped[float] = mapped_column(Float)
    x2: Mapped[float] = mapped_column(Float)
    y2: Mapped[float] = mapped_column(Float)
    polygons: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    rle: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    iscrowd: Mapped[bool] = mapped_column(Boolean, default=False)
    source: Mapped[str] = mapped_column(String(64), default="human")
    model_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    review_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    author: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}


class TrainingRegion(Base):
    """Inside this polygon the image's annotation is complete; no region = the whole image."""

    __tablename__ = "training_regions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    polygon: Mapped[list[Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AnnotationEvent(Base):
    """Append-only history: every change to an annotation, and image-level review actions."""

    __tablename__ = "annotation_events"
    __table_args__ = (Index("ix_events_project_at", "project_id", "id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    annotation_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    action: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(200), default="")
    actor_kind: Mapped[str] = mapped_column(String(16), default="human")  # human | model | import
    round: Mapped[int | None] = mapped_column(Integer, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class TrainedModel(Base):
    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    base: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(String(16))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), nullable=True)
    round: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(16), default="training")
    classes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    best_epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    directory: Mapped[str] = mapped_column(String(2000), default="")
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    sweep: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ModelEpoch(Base):
    __tablename__ = "model_epochs"
    __table_args__ = (UniqueConstraint("model_id", "epoch", name="uq_model_epoch"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    epoch: Mapped[int] = mapped_column(Integer)
    losses: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    log: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(16))  # admin | annotator | reviewer
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


def is_ground_truth() -> ColumnElement[bool]:
    """The SQL condition of an annotation that is ground truth: drawn by a person, or an accepted proposal."""
    return Annotation.review_state.is_(None) | Annotation.review_state.in_(GROUND_TRUTH_STATES)


def box_ring(ann: Annotation) -> list[float]:
    """An annotation's box as one flat ring."""
    return [ann.x1, ann.y1, ann.x2, ann.y1, ann.x2, ann.y2, ann.x1, ann.y2]


def annotation_rle(ann: Annotation, height: int, width: int) -> dict[str, Any]:
    """An annotation's pixels as one COCO RLE: its mask, else its rings, else its box."""
    from labelloop.core.geometry import polygons_to_rle

    return ann.rle if ann.rle is not None else polygons_to_rle(ann.polygons or [box_ring(ann)], height, width)
