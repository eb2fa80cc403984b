"""Import a dataset into a project: one transaction, all or nothing.

Images are inspected (size limits, decodability), hashed and copied into the project's
content-addressed store (or referenced in place with ``link``); annotations are checked
against the image size. Any invalid record fails the whole import with an error naming
the file and record, unless ``skip_invalid``, which imports the rest and reports the skipped.
Files copied by a failed import are removed again.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, insert, select

from labelloop.core.geometry import EDGE_SLACK, check_mask_size, check_polygons, check_rle
from labelloop.core.progress import StageProgress
from labelloop.core.records import (
    GROUND_TRUTH_STATES,
    UNLABELLED_STATUSES,
    AnnotationRecord,
    DatasetRecord,
    ImageRecord,
    clean_class_name,
)
from labelloop.errors import FormatError, InvalidInputError
from labelloop.formats import ReadOptions, detect_format, get_format
from labelloop.formats.base import Recorder
from labelloop.services.annotations import refresh_image_status
from labelloop.services.layers import sync_layer_images
from labelloop.settings import get_settings
from labelloop.store.images import damage_note, inspect_image, sha256_file, store_blob
from labelloop.store.project import ProjectContext, palette_color
from labelloop.store.tables import (
    Annotation,
    AnnotationEvent,
    Image,
    LabelClass,
    TrainedModel,
    TrainingRegion,
    utcnow,
)

__all__ = ["ImportReport", "import_dataset", "import_path"]

_IMAGES: Table = Image.__table__  # type: ignore[assignment]  # Core table: bulk inserts skip the ORM's per-row bookkeeping
_CHUNK = 20_000


@dataclass
class ImportReport:
    format: str = ""
    images_added: int = 0
    images_matched: int = 0
    annotations_added: int = 0
    labels_added: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    #: imported with a warning: ``{"file_name", "reason"}`` of files whose pixels are only partly there
    damaged: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"format": self.format, "images_added": self.images_added,
                "images_matched": self.images_matched, "annotations_added": self.annotations_added,
                "labels_added": self.labels_added, "skipped": self.skipped, "damaged": self.damaged}


@dataclass
class _Prepared:
    record: ImageRecord
    width: int
    height: int
    sha: str
    existing_id: int | None = None
    storage_path: str = ""
    damaged: str | None = None


def import_path(ctx: ProjectContext, source: Path, *, format: str | None = None, link: bool = False,
                skip_invalid: bool = False, allow_missing_images: bool = False, follow_links: bool = False,
                progress: StageProgress | None = None, actor: str = "import") -> ImportReport:
    """Read ``source`` (format given or detected) and import it into the project. An image reached
    through a symbolic link that leads outside the dataset is refused unless ``follow_links``: a
    dataset from elsewhere must not smuggle the server's own files into a project."""
    fmt = get_format(format) if format else detect_format(source)
    if progress:
        progress("read", 0, 1)
    dataset = fmt.read(source, ReadOptions(skip_invalid=skip_invalid))
    if not dataset.images:  # "imported 0 images" would read as success
        skipped = f" ({len(dataset.skipped)} record(s) skipped as invalid)" if dataset.skipped else ""
        raise FormatError(f"no images found in this {fmt.name} dataset{skipped}, so nothing was imported",
                          f"check the path and the format ({fmt.name}: {fmt.description})", file=str(source))
    for label in dataset.labels:
        try:
            clean_class_name(label)
        except InvalidInputError as err:  # before anything is stored, naming the file
            raise FormatError(err.message, err.hint, file=str(source), record="classes") from None
    if not follow_links:
        _refuse_links_out(dataset, source)
    report = import_dataset(ctx, dataset, link=link, skip_invalid=skip_invalid,
                            allow_missing_images=allow_missing_images, progress=progress, actor=actor)
    report.format = fmt.name
    return report


def _refuse_links_out(dataset: DatasetRecord, source: Path) -> None:
    """A :class:`FormatError` for the first image whose path goes through a link out of the dataset
    (its folder; for an annotation file, the file's folder and the one above, where images sit)."""
    base = source if source.is_dir() else source.parent
    roots = [base.resolve(), *([] if source.is_dir() else [base.parent.resolve()])]
    for img in dataset.images:
        if img.path is None or not img.path.exists():
            continue
        real = img.path.resolve()
        if real != Path(os.path.abspath(img.path)) and not any(real.is_relative_to(r) for r in roots):
            raise FormatError(f"the image is a link to {real}, outside the dataset",
                              "copy the file into the dataset, or pass --follow-links if you trust it",
                              file=img.file_name, record="image")


def import_dataset(ctx: ProjectContext, dataset: DatasetRecord, *, link: bool = False,
                   skip_invalid: bool = False, allow_missing_images: bool = False,
                   progress: StageProgress | None = None, actor: str = "import") -> ImportReport:
    recorder = Recorder(ReadOptions(skip_invalid=skip_invalid))
    recorder.skipped.extend(dataset.skipped)
    existing = _existing_images(ctx)
    prepared = _prepare_images(ctx, dataset, recorder, existing, allow_missing_images, progress)
    created: list[Path] = []
    try:
        if not link:
            _copy_blobs(ctx, prepared, created, progress)
        else:
            for p in prepared:
                p.storage_path = str(p.record.path.resolve()) if p.record.path else ""
        report = _write(ctx, dataset, prepared, link, actor, progress)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    if report.images_added:
        sync_layer_images(ctx)  # every layer of the project holds the same images
    report.skipped = recorder.skipped
    return report


def _existing_images(ctx: ProjectContext) -> dict[str, tuple[int, str]]:
    with ctx.store.session() as s:
        rows = s.execute(select(Image.file_name, Image.id, Image.sha256).where(Image.project_id == ctx.id))
        return {name: (iid, sha) for name, iid, sha in rows}


def _prepare_images(ctx: ProjectContext, dataset: DatasetRecord, recorder: Recorder,
                    existing: dict[str, tuple[int, str]], allow_missing: bool,
                    progress: StageProgress | None) -> list[_Prepared]:
    settings = get_settings()
    out: list[_Prepared] = []
    seen: set[str] = set()
    total = len(dataset.images)
    for i, rec in enumerate(dataset.images):
        if progress and i % 200 == 0:
            progress("check", i, total)
        if rec.file_name in seen:
            recorder.invalid(rec.file_name, "image", "duplicate file name in this import",
                             "each image may appear once; rename one of them")
            continue
        seen.add(rec.file_name)
        prepared = _prepare_one(rec, recorder, allow_missing, settings.max_image_pixels,
                                settings.max_image_bytes)
        if prepared is None:
            continue
        if rec.file_name in existing:
            iid, sha = existing[rec.file_name]
            if prepared.sha and sha and sha != prepared.sha:
                recorder.invalid(rec.file_name, "image", "the project already has a different image "
                                 "with this file name", "rename the file, or import into a new project")
                continue
            prepared.existing_id = iid
        rec.annotations = _valid_annotations(rec, prepared, recorder)
        out.append(prepared)
    if progress:
        progress("check", total, total)
    return out


def _prepare_one(rec: ImageRecord, recorder: Recorder, allow_missing: bool, max_pixels: int,
                 max_bytes: int) -> _Prepared | None:
    if rec.path is None or not rec.path.exists():
        if allow_missing and rec.width and rec.height:
            try:  # the declared size is all there is: it must be a size an image can have
                check_mask_size(rec.height, rec.width, max_pixels, what="image")
            except ValueError as exc:
                recorder.invalid(rec.file_name, "image", f"declared size: {exc}")
                return None
            return _Prepared(record=rec, width=rec.width, height=rec.height, sha="")
        recorder.invalid(rec.file_name, "image", "image file not found next to the annotations",
                         "put the images beside the annotation file (or in images/); or import with "
                         "--allow-missing-images to add their files later, or --skip-invalid to leave them out")
        return None
    try:
        info = inspect_image(rec.path, max_pixels=max_pixels, max_bytes=max_bytes)
    except InvalidInputError as err:
        recorder.invalid(rec.file_name, "image", err.message.split(": ", 1)[-1], err.hint)
        return None
    if rec.width and rec.height and (rec.width, rec.height) != (info.width, info.height):
        swapped = (rec.height, rec.width) == (info.width, info.height)
        recorder.invalid(rec.file_name, "image", f"annotations say {rec.width}x{rec.height} but the file is "
                         f"{info.width}x{info.height}" + (" (its EXIF rotation applied)" if swapped else ""),
                         "labelloop reads pixels as stored: rotate the files themselves (e.g. `mogrify "
                         "-auto-orient *.jpg`) before annotating" if swapped else
                         "were the images resized after annotating?")
        return None
    width, height = (rec.width, rec.height) if rec.width and rec.height else (info.width, info.height)
    return _Prepared(record=rec, width=width, height=height, sha=sha256_file(rec.path), damaged=info.damaged)


def _valid_annotations(rec: ImageRecord, prepared: _Prepared, recorder: Recorder) -> list[AnnotationRecord]:
    w, h = prepared.width, prepared.height
    tol_x, tol_y = max(2.0, EDGE_SLACK * w), max(2.0, EDGE_SLACK * h)
    kept: list[AnnotationRecord] = []
    for j, ann in enumerate(rec.annotations):
        x1, y1, x2, y2 = ann.bbox
        if x1 < -tol_x or y1 < -tol_y or x2 > w + tol_x or y2 > h + tol_y:
            recorder.invalid(rec.file_name, f"annotation {j} ({ann.label})",
                             f"box {[round(v, 2) for v in ann.bbox]} lies outside the {w}x{h} image",
                             "check the coordinates' units (pixels) and the image size")
            continue
        try:
            if ann.rle is not None:
                check_rle(ann.rle, h, w)
            if ann.polygons:
                check_polygons(ann.polygons, w, h, max(tol_x, tol_y))
        except ValueError as exc:
            recorder.invalid(rec.file_name, f"annotation {j} ({ann.label})", str(exc),
                             "re-export the annotation from its tool, or import with --skip-invalid")
            continue
        kept.append(ann)
    return kept


def _copy_blobs(ctx: ProjectContext, prepared: list[_Prepared], created: list[Path],
                progress: StageProgress | None) -> None:
    total = len(prepared)
    for i, p in enumerate(prepared):
        if progress and i % 50 == 0:
            progress("copy", i, total)
        if p.existing_id is not None or p.record.path is None or not p.sha:
            continue  # already in the project, or registered without pixels
        path, new = store_blob(p.record.path, ctx.images_dir, p.sha)
        if new:
            created.append(path)
        p.storage_path = str(path.relative_to(ctx.root))
    if progress:
        progress("copy", total, total)


def _class_ids(session: Any, ctx: ProjectContext, labels: list[str], report: ImportReport) -> dict[str, int]:
    rows = session.execute(select(LabelClass.name, LabelClass.id, LabelClass.merged_into_id)
                           .where(LabelClass.project_id == ctx.id)).all()
    ids = {name: (merged or cid) for name, cid, merged in rows}
    position = len(rows)
    for label in labels:
        if label in ids:
            continue
        name = clean_class_name(label)  # a bad name fails the import, which rolls back: nothing is stored
        if name not in ids:  # "car " is the class "car": the name is stored as the project shows it
            cls = LabelClass(project_id=ctx.id, name=name, color=palette_color(position), position=position)
            session.add(cls)
            session.flush()
            ids[name] = cls.id
            report.labels_added.append(name)
            position += 1
        ids[label] = ids[name]
    return ids


def _status(rec: ImageRecord) -> str:
    if rec.status:
        return rec.status
    if any(a.review_state in (None, *GROUND_TRUTH_STATES) for a in rec.annotations):
        return "annotated"
    if rec.annotations:
        return "pre-annotated"
    return "new"


def _write(ctx: ProjectContext, dataset: DatasetRecord, prepared: list[_Prepared], link: bool, actor: str,
           progress: StageProgress | None) -> ImportReport:
    report = ImportReport()
    dataset.ensure_labels()
    now = utcnow()
    with ctx.store.session() as s:
        class_ids = _class_ids(s, ctx, dataset.labels, report)
        new = [p for p in prepared if p.existing_id is None]
        rows = [{"project_id": ctx.id, "file_name": p.record.file_name, "storage_path": p.storage_path,
                 "linked": link, "width": p.width, "height": p.height, "sha256": p.sha,
                 "split": p.record.split, "status": _status(p.record),
                 "damaged": damage_note("damaged", p.damaged) if p.damaged else None,
                 "created_at": now, "updated_at": now}
                for p in new]
        for start in range(0, len(rows), _CHUNK):
            ids = s.connection().execute(insert(_IMAGES).returning(
                _IMAGES.c.id, sort_by_parameter_order=True), rows[start:start + _CHUNK]).scalars().all()
            for p, iid in zip(new[start:start + _CHUNK], ids, strict=True):
                p.existing_id = iid
            if progress:
                progress("images", min(start + _CHUNK, len(rows)), len(rows))
        report.images_added = len(new)
        report.images_matched = len(prepared) - len(new)
        report.damaged = [{"file_name": p.record.file_name, "reason": p.damaged} for p in new if p.damaged]
        report.annotations_added = _insert_annotations(s, ctx, prepared, class_ids, actor, now, progress)
        fresh = {id(p) for p in new}
        _refresh_matched(s, [p.existing_id for p in prepared if id(p) not in fresh and p.record.annotations])
        _insert_regions(s, prepared, now)
        s.add(AnnotationEvent(project_id=ctx.id, action="import", actor=actor, actor_kind="import", at=now,
                              after={"images": report.images_added, "annotations": report.annotations_added}))
    return report


_ANN_COLUMNS = ("project_id", "image_id", "class_id", "x1", "y1", "x2", "y2", "polygons", "rle", "iscrowd",
                "source", "model_id", "score", "review_state", "author", "attributes", "created_at", "updated_at",
                "version")


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))


def _annotation_row(ctx: ProjectContext, image_id: int, ann: AnnotationRecord, class_id: int, actor: str,
                    now: Any, models: set[int]) -> tuple[Any, ...]:
    model_id = None  # the source names a model: linked only when it is one of this project's
    if ann.source.startswith("model:") and ann.source[6:].isdigit() and int(ann.source[6:]) in models:
        model_id = int(ann.source[6:])
    x1, y1, x2, y2 = ann.bbox
    return (ctx.id, image_id, class_id, x1, y1, x2, y2, _json(ann.polygons), _json(ann.rle), ann.iscrowd,
            ann.source, model_id, ann.score, ann.review_state, actor if ann.source == "human" else ann.source,
            _json(ann.attributes) if ann.attributes else "{}", now, now, 1)


def _bulk_insert_annotations(s: Any, rows: list[tuple[Any, ...]]) -> None:
    """executemany straight through the driver: the ORM's per-value processing would dominate
    a million-row import (JSON columns are serialised once above)."""
    conn = s.connection()
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    sql = (f"INSERT INTO annotations ({', '.join(_ANN_COLUMNS)}) "
           f"VALUES ({', '.join([mark] * len(_ANN_COLUMNS))})")
    conn.exec_driver_sql(sql, rows)


def _insert_annotations(s: Any, ctx: ProjectContext, prepared: list[_Prepared], class_ids: dict[str, int],
                        actor: str, now: Any, progress: StageProgress | None) -> int:
    matched = [p.existing_id for p in prepared if p.record.annotations and p.existing_id is not None]
    present = _present_keys(s, matched)
    total = sum(len(p.record.annotations) for p in prepared)
    batch: list[tuple[Any, ...]] = []
    added = done = 0
    models = set(s.scalars(select(TrainedModel.id).where(TrainedModel.project_id == ctx.id)))
    if s.connection().dialect.name == "sqlite":
        now = now.isoformat(sep=" ")  # what SQLAlchemy would store, formatted once instead of per row
    for p in prepared:
        if p.existing_id is None:
            continue
        for ann in p.record.annotations:
            done += 1
            if present and (p.existing_id, class_ids[ann.label], *(round(v, 6) for v in ann.bbox)) in present:
                continue  # re-importing the same file adds nothing twice
            batch.append(_annotation_row(ctx, p.existing_id, ann, class_ids[ann.label], actor, now, models))
            if len(batch) >= _CHUNK:
                _bulk_insert_annotations(s, batch)
                added += len(batch)
                batch = []
                if progress:
                    progress("annotations", done, total)
    if batch:
        _bulk_insert_annotations(s, batch)
        added += len(batch)
    if progress:
        progress("annotations", total, total)
    return added


def _refresh_matched(s: Any, image_ids: Sequence[int | None]) -> None:
    """Images already in the project that got annotations: labelled now (or pre-annotated)."""
    ids = [i for i in image_ids if i is not None]
    for start in range(0, len(ids), _CHUNK):
        for img in s.scalars(select(Image).where(Image.id.in_(ids[start:start + _CHUNK]),
                                                 Image.status.in_(UNLABELLED_STATUSES))):
            refresh_image_status(s, img)


def _present_keys(s: Any, image_ids: Sequence[int | None]) -> set[tuple[Any, ...]]:
    keys: set[tuple[Any, ...]] = set()
    ids = [i for i in image_ids if i is not None]
    for start in range(0, len(ids), 500):
        rows = s.execute(select(Annotation.image_id, Annotation.class_id, Annotation.x1, Annotation.y1,
                                Annotation.x2, Annotation.y2)
                         .where(Annotation.image_id.in_(ids[start:start + 500])))
        for row in rows:
            keys.add((row[0], row[1], *(round(v, 6) for v in row[2:])))
    return keys


def _insert_regions(s: Any, prepared: list[_Prepared], now: Any) -> None:
    rows = [{"image_id": p.existing_id, "polygon": r.polygon, "created_at": now}
            for p in prepared for r in p.record.regions]
    if rows:
        s.execute(insert(TrainingRegion), rows)
