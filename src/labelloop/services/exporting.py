"""Export a project (or one split) in any writable format."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select

from labelloop.core.records import (
    GROUND_TRUTH_STATES,
    AnnotationRecord,
    DatasetRecord,
    ImageRecord,
    RegionRecord,
    ReviewState,
)
from labelloop.errors import InvalidInputError
from labelloop.formats import WriteOptions, get_format
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass, TrainingRegion

__all__ = ["ExportReport", "export_project", "project_dataset"]

SPLITS = ("train", "val", "test", "none")


@dataclass
class ExportReport:
    format: str
    out: Path
    images: int
    annotations: int
    files: list[Path]
    #: images whose file is gone from the project's storage: their annotations are exported, the file is not
    missing_images: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "out": str(self.out), "images": self.images,
                "annotations": self.annotations, "files": [str(f) for f in self.files],
                "missing_images": self.missing_images}


def _states(include_proposals: bool) -> tuple[str | None, ...]:
    truth = (None, *GROUND_TRUTH_STATES)
    return (*truth, ReviewState.PROPOSED) if include_proposals else truth


def project_dataset(ctx: ProjectContext, *, split: str | None = None, include_proposals: bool = False,
                    image_ids: list[int] | None = None) -> DatasetRecord:
    """The project's images and annotations as records (human and accepted; proposals if asked)."""
    if split is not None and split not in SPLITS:
        raise InvalidInputError(f"unknown split {split!r}", f"expected one of: {', '.join(SPLITS)}")
    states = _states(include_proposals)
    with ctx.store.session() as s:
        classes = s.execute(select(LabelClass.id, LabelClass.name).where(
            LabelClass.project_id == ctx.id, LabelClass.active.is_(True)).order_by(LabelClass.position)).all()
        names = {cid: name for cid, name in classes}
        q = select(Image).where(Image.project_id == ctx.id).order_by(Image.id)
        if split == "none":
            q = q.where(Image.split.is_(None))
        elif split:
            q = q.where(Image.split == split)
        if image_ids is not None:
            q = q.where(Image.id.in_(image_ids))
        images = {img.id: _image_record(ctx, img) for img in s.scalars(q)}
        t = Annotation.__table__.c
        aq = select(t.image_id, t.class_id, t.x1, t.y1, t.x2, t.y2, t.polygons, t.rle, t.iscrowd, t.score,
                    t.source, t.review_state, t.attributes).where(t.project_id == ctx.id).order_by(t.id)
        for row in s.connection().execute(aq).yield_per(20_000):
            rec = images.get(row.image_id)
            if rec is None or row.review_state not in states or row.class_id not in names:
                continue
            rec.annotations.append(_annotation_record(row, names[row.class_id]))
        for region in s.scalars(select(TrainingRegion).join(Image).where(Image.project_id == ctx.id)):
            if region.image_id in images:
                images[region.image_id].regions.append(RegionRecord(polygon=list(region.polygon)))
    return DatasetRecord(labels=list(names.values()), images=list(images.values()), task=ctx.task)


def _image_record(ctx: ProjectContext, img: Image) -> ImageRecord:
    path = Path(img.storage_path) if img.storage_path else None
    if path is not None and not path.is_absolute():
        path = ctx.root / path
    return ImageRecord(file_name=img.file_name, width=img.width, height=img.height, path=path,
                       split=img.split, status=img.status)


def _annotation_record(ann: Any, label: str) -> AnnotationRecord:
    """From an annotations row (ORM object or Core row)."""
    return AnnotationRecord(label=label, bbox=(ann.x1, ann.y1, ann.x2, ann.y2), polygons=ann.polygons,
                            rle=ann.rle, iscrowd=ann.iscrowd, score=ann.score, source=ann.source,
                            review_state=ann.review_state, attributes=dict(ann.attributes or {}))


#: the folders of a project that are its own: an export there would mix with (or overwrite) them
PROJECT_FOLDERS = ("images", "models", "cache", "tmp", "sweeps", "qa-folds", ".thumbs")


def _refuse_project_folders(ctx: ProjectContext, out: Path) -> None:
    """The project folder itself and its own folders are no place for an export (a new folder inside
    the project, e.g. ``exports/``, is fine)."""
    target, root = Path(os.path.abspath(out)).resolve(), ctx.root.resolve()
    if target == root or any(target.is_relative_to(root / name) for name in PROJECT_FOLDERS):
        raise InvalidInputError(f"{out} is the project folder or one of its own ({', '.join(PROJECT_FOLDERS)}): "
                                "the export would mix with the project's files",
                                "export to a new folder, e.g. exports/coco")


def export_project(ctx: ProjectContext, out: Path, *, format: str, split: str | None = None,
                   include_proposals: bool = False, images: str = "copy") -> ExportReport:
    """Write the project into folder ``out`` in ``format``; images copied, linked or left out. An image
    whose file is gone is reported in ``missing_images`` (``labelloop doctor`` finds them), not a failure."""
    fmt = get_format(format)
    if not fmt.can_write:
        fmt.write(DatasetRecord(labels=[], images=[]), out, WriteOptions())  # raises the fix-it error
    if images not in ("copy", "link", "none"):
        raise InvalidInputError(f"unknown image mode {images!r}", "expected copy, link or none")
    if out.exists() and not out.is_dir():
        raise InvalidInputError(f"{out} is a file, and an export is a folder",
                                "pass the path of a new or existing folder")
    _refuse_project_folders(ctx, out)
    dataset = project_dataset(ctx, split=split, include_proposals=include_proposals)
    missing = _drop_missing_files(dataset) if images != "none" else []
    try:
        files = fmt.write(dataset, out, WriteOptions(images=images, task=ctx.task,
                                                        include_proposals=include_proposals))
    except OSError as exc:
        raise InvalidInputError(f"cannot write the export to {out}: {exc.strerror or exc}",
                                "check that the folder is writable and the disk has space") from exc
    return ExportReport(format=fmt.name, out=out, images=len(dataset.images),
                        annotations=sum(len(i.annotations) for i in dataset.images), files=files,
                        missing_images=missing)


def _drop_missing_files(dataset: DatasetRecord) -> list[str]:
    """The names of images whose stored file is gone (deleted or moved since import); their records
    lose the path, so the export writes their annotations and goes on without the file."""
    missing = []
    for img in dataset.images:
        if img.path is not None and not img.path.is_file():
            missing.append(img.file_name)
            img.path = None
    return missing
