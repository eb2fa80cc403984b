"""Images of a project: add uploaded files, list with filters and keyset paging, thumbnails.

Listing pages by image id (``after`` = the last id of the previous page), so page 1,000 of a
100k-image project costs the same as page 1: an index range scan, never an OFFSET.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import exists, func, select

from labelloop.core.records import ImageStatus, ReviewState
from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.services.datasets import image_path
from labelloop.services.layers import same_project, sync_layer_images
from labelloop.settings import get_settings
from labelloop.store.images import (
    IMAGE_EXTENSIONS,
    damage_note,
    inspect_image,
    load_pixels,
    open_image,
    save_atomically,
    sha256_file,
    store_blob,
)
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, AnnotationEvent, Image, LabelClass, TrainingRegion

__all__ = [
    "STATUSES",
    "AddedImages",
    "ImageFilter",
    "StoredImage",
    "add_image_files",
    "get_image",
    "image_file",
    "image_neighbours",
    "list_images",
    "review_queue",
    "stored_image",
    "thumbnail",
]

STATUSES: tuple[str, ...] = tuple(ImageStatus)
SPLITS = ("train", "val", "test", "none")
THUMB_SIZES = (128, 256, 512)
MAX_PAGE = 500


@dataclass
class AddedImages:
    added: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"added": self.added, "duplicates": self.duplicates, "errors": self.errors}


def _view(img: Image) -> dict[str, Any]:
    return {"id": img.id, "file_name": img.file_name, "width": img.width, "height": img.height,
            "status": img.status, "split": img.split, "sha256": img.sha256, "damaged": img.damaged,
            "created_at": img.created_at.isoformat() if img.created_at else None}


def _unique_name(taken: set[str], name: str) -> str:
    if name not in taken:
        return name
    stem, ext = os.path.splitext(name)
    n = 2
    while f"{stem}-{n}{ext}" in taken:
        n += 1
    return f"{stem}-{n}{ext}"


def add_image_files(ctx: ProjectContext, files: list[tuple[str, Path]], *, actor: str) -> AddedImages:
    """Add uploaded files ``(original name, temp path)``: each is inspected (size limits, bombs,
    decodability), hashed and copied into the content-addressed store. A file whose content is in
    the project already is reported as a duplicate; a taken name gets a ``-2`` suffix; an unreadable
    file is reported in ``errors`` and the others are still added."""
    settings = get_settings()
    report = AddedImages()
    with ctx.store.session() as s:
        taken = set(s.scalars(select(Image.file_name).where(Image.project_id == ctx.id)).all())
        for original, path in files:
            name = os.path.basename(original.replace("\\", "/")).strip() or "image"
            if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                report.errors.append(f"{name}: not an image file name (expected "
                                     f"{', '.join(sorted(IMAGE_EXTENSIONS))})")
                continue
            try:
                info = inspect_image(path, max_pixels=settings.max_image_pixels, max_bytes=settings.max_image_bytes)
            except InvalidInputError as err:
                report.errors.append(f"{name}: {err.message.split(': ', 1)[-1]}")
                continue
            sha = sha256_file(path)
            if s.scalars(select(Image.id).where(Image.project_id == ctx.id, Image.sha256 == sha)).first():
                report.duplicates.append(name)
                continue
            blob, _ = store_blob(_named(path, name), ctx.images_dir, sha)
            name = _unique_name(taken, name)
            taken.add(name)
            img = Image(project_id=ctx.id, file_name=name, storage_path=str(blob.relative_to(ctx.root)),
                        linked=False, width=info.width, height=info.height, sha256=sha, status="new",
                        damaged=damage_note("damaged", info.damaged) if info.damaged else None)
            s.add(img)
            s.flush()
            report.added.append(_view(img))
        if report.added:
            s.add(AnnotationEvent(project_id=ctx.id, action="upload", actor=actor, actor_kind="human",
                                  after={"images": len(report.added)}))
    if report.added:
        sync_layer_images(ctx)  # every layer of the project holds the same images
    return report


def _named(path: Path, name: str) -> Path:
    """``store_blob`` takes the extension from the source path: give the temp file the upload's."""
    ext = Path(name).suffix.lower()
    if path.suffix.lower() == ext:
        return path
    target = path.with_name(path.name + ext)
    path.replace(target)
    return target


@dataclass(frozen=True)
class ImageFilter:
    status: str | None = None
    split: str | None = None
    label: str | None = None  # images with at least one annotation (or proposal) of this class
    min_score: float | None = None  # images with a proposal scoring in [min_score, max_score]
    max_score: float | None = None
    search: str | None = None  # file name contains
    damaged: bool | None = None  # True: only damaged images (truncated, missing, changed); False: only whole ones

    def validate(self) -> None:
        if self.status and self.status not in STATUSES:
            raise InvalidInputError(f"unknown status {self.status!r}", f"expected one of: {', '.join(STATUSES)}")
        if self.split and self.split not in SPLITS:
            raise InvalidInputError(f"unknown split {self.split!r}", f"expected one of: {', '.join(SPLITS)}")
        for v in (self.min_score, self.max_score):
            if v is not None and not 0.0 <= v <= 1.0:
                raise InvalidInputError(f"score bound {v} is outside [0, 1]")


def _filtered(ctx: ProjectContext, flt: ImageFilter, s: Any) -> Any:
    flt.validate()
    q = select(Image).where(Image.project_id == ctx.id)
    if flt.status:
        q = q.where(Image.status == flt.status)
    if flt.split == "none":
        q = q.where(Image.split.is_(None))
    elif flt.split:
        q = q.where(Image.split == flt.split)
    if flt.search:
        q = q.where(Image.file_name.contains(flt.search, autoescape=True))
    if flt.damaged is not None:
        q = q.where(Image.damaged.is_not(None) if flt.damaged else Image.damaged.is_(None))
    if flt.label:
        cid = s.scalars(select(LabelClass.id).where(LabelClass.project_id == ctx.id, LabelClass.name == flt.label,
                                                    LabelClass.active.is_(True))).first()
        if cid is None:
            raise NotFoundError(f"no class named {flt.label!r}")
        not_rejected = Annotation.review_state.is_(None) | (Annotation.review_state != ReviewState.REJECTED)
        q = q.where(exists().where(Annotation.image_id == Image.id, Annotation.class_id == cid, not_rejected))
    if flt.min_score is not None or flt.max_score is not None:
        cond = [Annotation.image_id == Image.id, Annotation.review_state == ReviewState.PROPOSED]
        if flt.min_score is not None:
            cond.append(Annotation.score >= flt.min_score)
        if flt.max_score is not None:
            cond.append(Annotation.score <= flt.max_score)
        q = q.where(exists().where(*cond))
    return q


def list_images(ctx: ProjectContext, flt: ImageFilter | None = None, *, after: int | None = None,
                before: int | None = None, limit: int = 100, with_total: bool = False) -> dict[str, Any]:
    """One page of images ordered by id: ``after`` pages forward, ``before`` backward.

    Each item carries its annotation and proposal counts; ``next_after`` is the cursor of the
    next page (None at the end); ``total`` is counted only when asked (it scans the filter)."""
    flt = flt or ImageFilter()
    limit = max(1, min(limit, MAX_PAGE))
    with ctx.store.session() as s:
        q = _filtered(ctx, flt, s)
        filtered = q
        if after is not None:
            q = q.where(Image.id > after)
        q = q.where(Image.id < before).order_by(Image.id.desc()) if before is not None else q.order_by(Image.id)
        page = q.limit(limit + 1)
        rows = list(s.scalars(page).all())
        more = len(rows) > limit
        rows = rows[:limit]
        if before is not None:
            rows.reverse()
        ids = [r.id for r in rows]
        counts: dict[int, dict[str, int]] = {i: {"annotations": 0, "proposals": 0} for i in ids}
        if ids:
            # the page as a sub-query, not IN (:ids): expanding 100s of bound ids costs more than the query
            page_ids = page.with_only_columns(Image.id).subquery()
            for image_id, state, n in s.execute(
                    select(Annotation.image_id, Annotation.review_state, func.count())
                    .where(Annotation.image_id.in_(select(page_ids.c.id)))
                    .group_by(Annotation.image_id, Annotation.review_state)):
                key = "proposals" if state == ReviewState.PROPOSED else \
                    ("annotations" if state != ReviewState.REJECTED else None)
                if key and image_id in counts:
                    counts[image_id][key] += n
        total = s.scalar(select(func.count()).select_from(filtered.order_by(None).subquery())) if with_total else None
    items = [{**_view(r), **counts[r.id]} for r in rows]
    return {"items": items, "next_after": ids[-1] if ids and (more or before is not None) else None,
            "prev_before": ids[0] if ids else None, "total": total}


def get_image(ctx: ProjectContext, image_id: int) -> dict[str, Any]:
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        if img is None or img.project_id != ctx.id:
            raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
        regions = s.scalars(select(TrainingRegion.polygon).where(TrainingRegion.image_id == image_id)
                            .order_by(TrainingRegion.id)).all()
        return {**_view(img), "regions": [list(r) for r in regions]}


def image_neighbours(ctx: ProjectContext, image_id: int, flt: ImageFilter | None = None) -> dict[str, int | None]:
    """Ids of the previous and next image (by id) under the same filter, for next/previous."""
    flt = flt or ImageFilter()
    with ctx.store.session() as s:
        q = _filtered(ctx, flt, s).with_only_columns(Image.id)
        prev_id = s.scalar(q.where(Image.id < image_id).order_by(Image.id.desc()).limit(1))
        next_id = s.scalar(q.where(Image.id > image_id).order_by(Image.id).limit(1))
    return {"previous": prev_id, "next": next_id}


@dataclass(frozen=True)
class StoredImage:
    """An image's file on disk with what the database knows of it."""

    path: Path
    name: str
    sha256: str
    width: int
    height: int


def stored_image(ctx: ProjectContext, image_id: int) -> StoredImage:
    """The image's file (checked to exist), download name, content hash and size in pixels."""
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        if img is None or (img.project_id != ctx.id and not same_project(s, ctx, img.project_id)):
            raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
        if not img.storage_path:
            raise NotFoundError(f"image {img.file_name} was registered without its file",
                                "import it again with the image files present")
        found = StoredImage(path=image_path(ctx, img.storage_path), name=img.file_name,
                            sha256=img.sha256 or str(image_id), width=img.width, height=img.height)
    if not found.path.is_file():
        raise NotFoundError(f"the file of image {found.name} is missing ({found.path})",
                            "restore it or re-import the image")
    return found


def image_file(ctx: ProjectContext, image_id: int) -> tuple[Path, str]:
    """The image's file on disk and its download name."""
    img = stored_image(ctx, image_id)
    return img.path, img.name


def thumbnail(ctx: ProjectContext, image_id: int, size: int = 256) -> Path:
    """A JPEG no larger than ``size`` px on its longest side, made once and cached by content hash."""
    if size not in THUMB_SIZES:
        raise InvalidInputError(f"thumbnail size {size} is not offered", f"expected one of {THUMB_SIZES}")
    img = stored_image(ctx, image_id)
    thumb = ctx.root / ".thumbs" / img.sha256[:2] / f"{img.sha256}-{size}.jpg"
    if thumb.is_file():
        return thumb
    with open_image(img.path, max_pixels=get_settings().max_image_pixels) as src:
        src.draft("RGB", (size, size))  # JPEG decodes at a fraction of the size: much faster
        load_pixels(src, img.path)  # a damaged (truncated) file shows what it holds
        im = src.convert("RGB")  # no EXIF rotation: boxes are in stored pixel coordinates
    im.thumbnail((size, size))
    save_atomically(im, thumb, "JPEG", quality=82)
    return thumb


def review_queue(ctx: ProjectContext, *, sort: str = "confidence", min_score: float | None = None,
                 max_score: float | None = None, limit: int = 200, rank: list[int] | None = None) -> dict[str, Any]:
    """Images with open proposals and their lowest/highest/mean proposal score.

    ``sort``: ``confidence`` (least confident first: where review matters most), ``-confidence``,
    ``rank`` (the order of ``rank``, e.g. the latest suggestions, then the rest) or ``id``."""
    limit = max(1, min(limit, MAX_PAGE))
    with ctx.store.session() as s:
        q = (select(Annotation.image_id, func.count(), func.min(Annotation.score), func.max(Annotation.score),
                    func.avg(Annotation.score))
             .where(Annotation.project_id == ctx.id, Annotation.review_state == ReviewState.PROPOSED)
             .group_by(Annotation.image_id))
        if min_score is not None:
            q = q.where(Annotation.score >= min_score)
        if max_score is not None:
            q = q.where(Annotation.score <= max_score)
        rows = list(s.execute(q).all())
        total_images = len(rows)
        total_proposals = sum(r[1] for r in rows)
        if sort == "rank" and rank:
            pos = {iid: i for i, iid in enumerate(rank)}
            rows.sort(key=lambda r: (pos.get(r[0], len(pos)), r[0]))
        elif sort in ("confidence", "-confidence"):
            rows.sort(key=lambda r: (r[4] if r[4] is not None else 1.0, r[0]), reverse=sort == "-confidence")
        else:
            rows.sort(key=lambda r: r[0])
        rows = rows[:limit]
        names = dict(s.execute(select(Image.id, Image.file_name).where(Image.id.in_([r[0] for r in rows]))).all()) \
            if rows else {}
    items = [{"image_id": iid, "file_name": names.get(iid, ""), "proposals": n, "min_score": lo, "max_score": hi,
              "mean_score": mean} for iid, n, lo, hi, mean in rows]
    return {"items": items, "images": total_images, "proposals": total_proposals}
