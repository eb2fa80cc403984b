"""Annotation use cases with provenance, optimistic concurrency and an append-only history.

Every change goes through here (the editor, review, pre-annotation, the simulator), so the
history holds who or what did what, when, and the before/after of each annotation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from labelloop.core.geometry import (
    check_polygons,
    check_rle,
    mask_to_polygons,
    move_polygons,
    move_rle,
    polygons_bbox,
    rle_bbox_xyxy,
    rle_to_mask,
    snap_move,
)
from labelloop.core.records import AnnotationRecord, ReviewState
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, AnnotationEvent, Image, LabelClass, TrainingRegion, utcnow

__all__ = [
    "AnnotationInput",
    "accept_all",
    "annotation_dict",
    "create_annotation",
    "delete_annotation",
    "image_annotations",
    "record_image_event",
    "refresh_image_status",
    "review_annotation",
    "set_training_regions",
    "update_annotation",
]

REVIEW_ACTIONS = ("accept", "reject")
CREATE_ACTIONS = ("create", "click")


@dataclass
class AnnotationInput:
    """What a person (or a model) draws. ``bbox`` may be omitted when a polygon or mask is given."""

    label: str
    bbox: tuple[float, float, float, float] | None = None
    polygons: list[list[float]] | None = None
    rle: dict[str, Any] | None = None
    score: float | None = None
    attributes: dict[str, Any] | None = None
    #: with a mask and no polygons: keep the mask's outline as polygons too (what the canvas shows and
    #: edits; the mask stays what training reads)
    outline: bool = False

    def resolved_bbox(self) -> tuple[float, float, float, float]:
        if self.bbox is not None:
            return tuple(float(v) for v in self.bbox)  # type: ignore[return-value]
        if self.polygons:
            return polygons_bbox(self.polygons)
        if self.rle is not None:
            return rle_bbox_xyxy(self.rle)
        raise InvalidInputError("an annotation needs a bbox, a polygon or a mask")


def annotation_dict(ann: Annotation, class_name: str | None = None) -> dict[str, Any]:
    """A JSON-ready view (also the before/after stored in the history)."""
    return {"id": ann.id, "image_id": ann.image_id, "class_id": ann.class_id, "label": class_name,
            "bbox": [ann.x1, ann.y1, ann.x2, ann.y2], "polygons": ann.polygons, "rle": ann.rle,
            "iscrowd": ann.iscrowd, "source": ann.source, "model_id": ann.model_id, "score": ann.score,
            "review_state": ann.review_state, "author": ann.author, "version": ann.version,
            "attributes": ann.attributes or {},
            "created_at": ann.created_at.isoformat() if ann.created_at else None,
            "updated_at": ann.updated_at.isoformat() if ann.updated_at else None}


def _image(s: Session, ctx: ProjectContext, image_id: int) -> Image:
    img = s.get(Image, image_id)
    if img is None or img.project_id != ctx.id:
        raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
    return img


def _annotation(s: Session, ctx: ProjectContext, annotation_id: int) -> Annotation:
    ann = s.get(Annotation, annotation_id)
    if ann is None or ann.project_id != ctx.id:
        raise NotFoundError(f"annotation {annotation_id} is not in project {ctx.name!r}")
    return ann


def _class_id(s: Session, ctx: ProjectContext, label: str) -> int:
    cid = s.scalars(select(LabelClass.id).where(LabelClass.project_id == ctx.id, LabelClass.name == label,
                                                LabelClass.active.is_(True))).first()
    if cid is None:
        names = s.scalars(select(LabelClass.name).where(LabelClass.project_id == ctx.id,
                                                        LabelClass.active.is_(True))).all()
        raise InvalidInputError(f"unknown class {label!r}", f"expected one of: {', '.join(names)}")
    return cid


def _class_name(s: Session, class_id: int) -> str:
    cls = s.get(LabelClass, class_id)
    return cls.name if cls else "?"


def _validate(data: AnnotationInput, img: Image) -> tuple[float, float, float, float]:
    """The annotation's box, after checking its geometry against the image: a mask is a COCO RLE of
    the image's size whose runs cover it, polygon rings lie inside and enclose some area, the box
    has an area and lies inside; else an :class:`InvalidInputError` that says which."""
    try:
        if data.rle is not None:
            check_rle(data.rle, img.height, img.width)
        if data.polygons:
            check_polygons(data.polygons, img.width, img.height, tolerance=1.0)
        bbox = data.resolved_bbox()
        AnnotationRecord(label=data.label, bbox=bbox, polygons=data.polygons, score=data.score)  # validates
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise InvalidInputError(f"invalid annotation: {exc}",
                                "a box is [x1, y1, x2, y2] with x2 > x1 and y2 > y1 in image pixels; polygons "
                                "are flat [x, y, ...] rings; a mask is {size: [height, width], counts} as "
                                "pycocotools.mask.encode writes it") from exc
    x1, y1, x2, y2 = bbox
    if x1 < -1 or y1 < -1 or x2 > img.width + 1 or y2 > img.height + 1:
        raise InvalidInputError(f"box {[round(v, 1) for v in bbox]} lies outside the {img.width}x{img.height} image")
    return bbox


def _event(s: Session, ctx: ProjectContext, ann: Annotation | None, image_id: int, action: str, actor: str,
           actor_kind: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
           round_: int | None = None) -> None:
    s.add(AnnotationEvent(project_id=ctx.id, image_id=image_id, annotation_id=ann.id if ann else None,
                          action=action, actor=actor, actor_kind=actor_kind, before=before, after=after,
                          round=round_))


def refresh_image_status(s: Session, img: Image) -> None:
    """new -> pre-annotated -> annotated/reviewed, derived from the image's annotations."""
    states = s.scalars(select(Annotation.review_state).where(Annotation.image_id == img.id)).all()
    if any(st == ReviewState.PROPOSED for st in states):
        img.status = "pre-annotated"
    elif any(st in (ReviewState.ACCEPTED, ReviewState.EDITED, ReviewState.REJECTED) for st in states):
        img.status = "reviewed"
    elif states:
        img.status = "annotated"
    elif img.status in ("pre-annotated",):
        img.status = "new"


def create_annotation(ctx: ProjectContext, image_id: int, data: AnnotationInput, *, actor: str,
                      source: str = "human", model_id: int | None = None, round_: int | None = None,
                      action: str = "create") -> dict[str, Any]:
    """Draw (human) or propose (``source="model:N"``, review state ``proposed``) an annotation.

    ``action`` is what the history records: ``create`` (drawn) or ``click`` (click-to-box).
    """
    if action not in CREATE_ACTIONS:
        raise InvalidInputError(f"unknown create action {action!r}", f"expected one of: {', '.join(CREATE_ACTIONS)}")
    with ctx.store.session() as s:
        img = _image(s, ctx, image_id)
        bbox = _validate(data, img)
        human = source == "human"
        polygons = data.polygons
        if data.outline and data.rle is not None and not polygons:
            polygons = mask_to_polygons(rle_to_mask(data.rle)) or None
        ann = Annotation(project_id=ctx.id, image_id=img.id, class_id=_class_id(s, ctx, data.label),
                         x1=bbox[0], y1=bbox[1], x2=bbox[2], y2=bbox[3], polygons=polygons, rle=data.rle,
                         source=source, model_id=model_id, score=data.score,
                         review_state=None if human else ReviewState.PROPOSED, author=actor,
                         attributes=data.attributes or {})
        s.add(ann)
        s.flush()
        view = annotation_dict(ann, data.label)
        _event(s, ctx, ann, img.id, action, actor, "human" if human else "model", None, view, round_)
        refresh_image_status(s, img)
        return view


def _check_version(ann: Annotation, expected: int | None) -> None:
    if expected is not None and ann.version != expected:
        raise ConflictError(f"annotation {ann.id} changed since you loaded it (version {expected}, now "
                            f"{ann.version})", "reload the image and apply your change again")


#: coordinates closer than this are the same (clients round to 0.01 px)
SAME_PX = 0.02


def _same_box(a: Sequence[float], b: Sequence[float]) -> bool:
    return all(abs(float(x) - float(y)) <= SAME_PX for x, y in zip(a, b, strict=True))


def _repeats_rings(given: Sequence[Sequence[float]], stored: Sequence[Sequence[float]] | None) -> bool:
    """``given`` repeats the stored rings (all, or the first ones: a client that shows one ring)."""
    stored = stored or []
    return 0 < len(given) <= len(stored) and all(
        len(g) == len(r) and _same_box(g, r) for g, r in zip(given, stored, strict=False))


Box = tuple[float, float, float, float]


def _edited_geometry(ann: Annotation, data: AnnotationInput, bbox: Box
                     ) -> tuple[Box, list[list[float]] | None, dict[str, Any] | None]:
    """(bbox, polygons, rle) after an edit. A new mask or changed rings replace the shape (a mask then
    comes from the rings); rings that repeat the stored ones, or none given, keep every ring and the
    mask, moved and scaled with the box when the box moved (a masked box moves by whole pixels, as its
    mask does); a relabel keeps the geometry as it is."""
    old = (ann.x1, ann.y1, ann.x2, ann.y2)
    if data.rle is not None:
        return bbox, data.polygons, data.rle
    if data.polygons is not None:
        return bbox, (data.polygons or None), None
    if _same_box(bbox, old):
        return old, ann.polygons, ann.rle
    if ann.rle is not None:
        bbox = snap_move(old, bbox)
    return (bbox, move_polygons(ann.polygons, old, bbox) if ann.polygons else ann.polygons,
            move_rle(ann.rle, old, bbox) if ann.rle is not None else None)


def _lost_race(annotation_id: int, what: str, hint: str) -> ConflictError:
    """Another writer's commit won between our read and our write (SQLAlchemy's ``StaleDataError``)."""
    return ConflictError(f"annotation {annotation_id} was {what} by someone else meanwhile", hint)


def update_annotation(ctx: ProjectContext, annotation_id: int, data: AnnotationInput, *, actor: str,
                      expected_version: int | None, round_: int | None = None,
                      may_review: bool = True) -> dict[str, Any]:
    """Move/reshape/relabel. On a model proposal this is a review edit (state ``edited``) when the editor
    ``may_review``; a proposal fixed by someone who may not review stays a proposal (fixed, still to be
    accepted), so review cannot be skipped. An edit that changes nothing changes nothing (no new
    version, no history, no state).

    Only what changed changes: a relabel (no geometry, or the stored geometry again) keeps every ring
    and the mask; a moved or resized box moves its rings and mask with it; new rings or a new mask
    replace the shape (see :func:`_edited_geometry`).
    """
    try:
        with ctx.store.session() as s:
            ann = _annotation(s, ctx, annotation_id)
            _check_version(ann, expected_version)
            img = _image(s, ctx, ann.image_id)
            before = annotation_dict(ann, _class_name(s, ann.class_id))
            relabel = data.bbox is None and not data.polygons and data.rle is None
            repeats = data.rle is None and bool(data.polygons) and _repeats_rings(data.polygons or [], ann.polygons)
            if relabel or repeats:  # the shape as stored (a viewer that shows one ring sends that ring back)
                data = replace(data, bbox=(ann.x1, ann.y1, ann.x2, ann.y2), polygons=None)
            bbox, polygons, rle = _edited_geometry(ann, data, _validate(data, img))
            class_id = _class_id(s, ctx, data.label)
            attributes = data.attributes if data.attributes is not None else ann.attributes
            if (class_id == ann.class_id and _same_box(bbox, (ann.x1, ann.y1, ann.x2, ann.y2))
                    and polygons == ann.polygons and rle == ann.rle and attributes == ann.attributes):
                return before  # nothing changed: not an edit, not a review
            ann.class_id = class_id
            ann.x1, ann.y1, ann.x2, ann.y2 = bbox
            ann.polygons, ann.rle = polygons, rle
            ann.attributes = attributes
            if ann.review_state in (ReviewState.ACCEPTED, ReviewState.EDITED) or (
                    ann.review_state == ReviewState.PROPOSED and may_review):
                ann.review_state = ReviewState.EDITED
            s.flush()
            after = annotation_dict(ann, data.label)
            action = "class_change" if before["label"] != data.label and before["bbox"] == after["bbox"] else "update"
            _event(s, ctx, ann, img.id, action, actor, "human", before, after, round_)
            refresh_image_status(s, img)
            return after
    except StaleDataError as exc:
        raise _lost_race(annotation_id, "changed", "reload the image and apply your change again") from exc


def delete_annotation(ctx: ProjectContext, annotation_id: int, *, actor: str, expected_version: int | None = None,
                      round_: int | None = None) -> None:
    try:
        with ctx.store.session() as s:
            ann = _annotation(s, ctx, annotation_id)
            _check_version(ann, expected_version)
            img = _image(s, ctx, ann.image_id)
            before = annotation_dict(ann, _class_name(s, ann.class_id))
            _event(s, ctx, ann, img.id, "delete", actor, "human", before, None, round_)
            s.delete(ann)
            s.flush()
            refresh_image_status(s, img)
    except StaleDataError as exc:  # deleted (or changed) by someone else between our read and our delete
        raise _lost_race(annotation_id, "changed or deleted", "reload the image") from exc


def review_annotation(ctx: ProjectContext, annotation_id: int, action: str, *, actor: str,
                      expected_version: int | None = None, round_: int | None = None) -> dict[str, Any]:
    """Accept or reject a proposal (the history records who and when)."""
    if action not in REVIEW_ACTIONS:
        raise InvalidInputError(f"unknown review action {action!r}", "expected accept or reject")
    with ctx.store.session() as s:
        ann = _annotation(s, ctx, annotation_id)
        _check_version(ann, expected_version)
        if ann.source == "human":
            raise InvalidInputError(f"annotation {annotation_id} was drawn by a person; only model proposals "
                                    "are reviewed", "edit or delete it instead")
        before = annotation_dict(ann, _class_name(s, ann.class_id))
        ann.review_state = ReviewState.ACCEPTED if action == "accept" else ReviewState.REJECTED
        s.flush()
        after = annotation_dict(ann, before["label"])
        _event(s, ctx, ann, ann.image_id, action, actor, "human", before, after, round_)
        refresh_image_status(s, _image(s, ctx, ann.image_id))
        return after


def accept_all(ctx: ProjectContext, image_id: int, *, actor: str, min_score: float | None = None,
               round_: int | None = None) -> int:
    """Accept every open proposal on an image (optionally only those scoring >= ``min_score``)."""
    with ctx.store.session() as s:
        img = _image(s, ctx, image_id)
        q = select(Annotation).where(Annotation.image_id == img.id, Annotation.review_state == ReviewState.PROPOSED)
        if min_score is not None:
            q = q.where(Annotation.score >= min_score)
        anns = s.scalars(q).all()
        for ann in anns:
            before = annotation_dict(ann, _class_name(s, ann.class_id))
            ann.review_state = ReviewState.ACCEPTED
            s.flush()
            _event(s, ctx, ann, img.id, "accept", actor, "human", before, annotation_dict(ann, before["label"]),
                   round_)
        refresh_image_status(s, img)
        return len(anns)


def record_image_event(ctx: ProjectContext, image_id: int, action: str, *, actor: str,
                       round_: int | None = None) -> None:
    """Image-level actions for effort accounting, e.g. ``inspect`` when a person opens an image."""
    with ctx.store.session() as s:
        _image(s, ctx, image_id)
        _event(s, ctx, None, image_id, action, actor, "human", None, None, round_)


def image_annotations(ctx: ProjectContext, image_id: int, *, include_rejected: bool = False) -> list[dict[str, Any]]:
    with ctx.store.session() as s:
        _image(s, ctx, image_id)
        rows = s.execute(select(Annotation, LabelClass.name).join(LabelClass, LabelClass.id == Annotation.class_id)
                         .where(Annotation.image_id == image_id).order_by(Annotation.id)).all()
        return [annotation_dict(a, n) for a, n in rows if include_rejected or a.review_state != ReviewState.REJECTED]


def set_training_regions(ctx: ProjectContext, image_id: int, polygons: list[list[float]], *, actor: str) -> None:
    """Replace the image's training regions (empty = the whole image is annotated)."""
    with ctx.store.session() as s:
        img = _image(s, ctx, image_id)
        for ring in polygons:
            if len(ring) < 6 or len(ring) % 2:
                raise InvalidInputError("a training region needs >= 3 points as flat [x0, y0, x1, y1, ...]")
        for region in s.scalars(select(TrainingRegion).where(TrainingRegion.image_id == img.id)):
            s.delete(region)
        for ring in polygons:
            s.add(TrainingRegion(image_id=img.id, polygon=[float(v) for v in ring]))
        _event(s, ctx, None, img.id, "regions", actor, "human", None, {"regions": len(polygons)})
        img.updated_at = utcnow()
