"""Layers: one project's analysis built a feature at a time -- regions (tissue, field, road) and the
objects counted inside them (cells, plants, cars) -- instead of one project per feature.

Each layer has its own kind, classes, annotations, models and image status; every layer of a
project holds the same images (added to one layer, an image is added to all). A layer's rows live
in a project row of their own (:class:`~labelloop.store.tables.Layer`), so every service that works
on a project works on a layer: open the layer's context with :func:`layer_context`.

A child layer (``parent``) lives inside its parent's regions: its training sees only the areas its
parent's ground truth covers (drawn, or accepted proposals; a ``regions`` parent's ``background``
is not an area), its proposals outside them are dropped, and :func:`region_counts` counts its
objects per parent region ("cells per tumour region").
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from labelloop.core.geometry import boxes_inside, mask_to_polygons, rle_to_mask
from labelloop.core.records import LABELLED_STATUSES, ImageStatus, ReviewState
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.store.project import TASKS, ProjectContext, clean_labels, context_for, palette_color
from labelloop.store.tables import (
    Annotation,
    ClassEvent,
    Image,
    LabelClass,
    Layer,
    Project,
    annotation_rle,
    box_ring,
    is_ground_truth,
)

__all__ = [
    "BACKGROUND",
    "LayerInfo",
    "add_layer",
    "area_masks",
    "delete_layer",
    "inside_parent",
    "inside_parent_images",
    "layer_context",
    "layer_store_ids",
    "list_layers",
    "parent_context",
    "parent_regions_view",
    "region_counts",
    "rename_layer",
    "same_project",
    "sync_layer_images",
]

BACKGROUND = "background"
#: a layer name: letters, digits, ``_``, ``-``, ``.`` and spaces, starting with a letter or digit
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,59}$")


@dataclass(frozen=True)
class LayerInfo:
    id: int
    name: str
    kind: str
    parent: str | None
    position: int
    store_id: int

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "kind": self.kind, "parent": self.parent,
                "position": self.position}


def _rows(s: Session, owner_id: int) -> list[Layer]:
    return list(s.scalars(select(Layer).where(Layer.project_id == owner_id).order_by(Layer.position, Layer.id)))


def _infos(rows: list[Layer]) -> list[LayerInfo]:
    names = {r.id: r.name for r in rows}
    return [LayerInfo(r.id, r.name, r.kind, names.get(r.parent_id) if r.parent_id else None, r.position, r.store_id)
            for r in rows]


def layers_of(ctx: ProjectContext) -> list[LayerInfo]:
    """The project's layers, in order."""
    with ctx.store.session() as s:
        return _infos(_rows(s, ctx.project_id))


def list_layers(ctx: ProjectContext, per_class_target: int = 20) -> list[dict[str, Any]]:
    """Each layer with its classes (objects per class against ``per_class_target``), its labelled
    images and its models."""
    out = []
    with ctx.store.session() as s:
        for info in _infos(_rows(s, ctx.project_id)):
            counts = dict(s.execute(
                select(LabelClass.name, func.count(Annotation.id))
                .join(Annotation, (Annotation.class_id == LabelClass.id) & is_ground_truth(), isouter=True)
                .where(LabelClass.project_id == info.store_id, LabelClass.active.is_(True))
                .group_by(LabelClass.id, LabelClass.name).order_by(LabelClass.position)).all())
            labelled = s.scalar(select(func.count()).select_from(Image).where(
                Image.project_id == info.store_id, Image.status.in_(LABELLED_STATUSES))) or 0
            images = s.scalar(select(func.count()).select_from(Image).where(Image.project_id == info.store_id)) or 0
            out.append({**info.as_dict(), "images": images, "labelled_images": labelled,
                        "classes": [{"name": n, "count": c, "target": per_class_target}
                                    for n, c in counts.items()],
                        "current": info.store_id == ctx.id})
    return out


def _unknown(name: str, infos: Iterable[LayerInfo]) -> NotFoundError:
    names = ", ".join(i.name for i in infos)
    return NotFoundError(f"no layer {name!r} in this project", f"its layers are: {names}")


def _named(rows: list[Layer], name: str) -> Layer:
    row = next((r for r in rows if r.name == name), None)
    if row is None:
        raise _unknown(name, _infos(rows))
    return row


def layer_context(ctx: ProjectContext, name: str | None, *, default_first: bool = False) -> ProjectContext:
    """The context of layer ``name`` of ``ctx``'s project. ``None``: the only layer; with several, the
    first (``default_first``) or an error that lists them."""
    with ctx.store.session() as s:
        rows = _rows(s, ctx.project_id)
        if name is None or name == "":
            if len(rows) > 1 and not default_first:
                raise InvalidInputError(
                    f"this project has {len(rows)} layers: {', '.join(r.name for r in rows)}",
                    "say which with --layer NAME")
            row = rows[0] if rows else None
        else:
            row = _named(rows, name)
        if row is None or row.store_id == ctx.id:
            return ctx
        owner = s.get(Project, ctx.project_id)
        assert owner is not None
        return context_for(ctx.root, ctx.store, s, owner, row)


def parent_context(ctx: ProjectContext) -> ProjectContext | None:
    """The context of ``ctx``'s parent layer, if it has one."""
    with ctx.store.session() as s:
        row = s.scalars(select(Layer).where(Layer.store_id == ctx.id)).first()
        if row is None or row.parent_id is None:
            return None
        parent = s.get(Layer, row.parent_id)
        owner = s.get(Project, ctx.project_id)
        if parent is None or owner is None:
            return None
        return context_for(ctx.root, ctx.store, s, owner, parent)


def _check_name(name: str) -> str:
    name = name.strip()
    if not _NAME.match(name):
        raise InvalidInputError(f"bad layer name {name[:60]!r}",
                                "use up to 60 letters, digits, spaces, '_', '-' or '.', e.g. tumour or cells")
    return name


def add_layer(ctx: ProjectContext, name: str, kind: str, *, parent: str | None = None,
              labels: list[str] | None = None, actor: str = "") -> LayerInfo:
    """A new layer of ``ctx``'s project (with the project's images, all new in it)."""
    name = _check_name(name)
    if kind not in TASKS:
        raise InvalidInputError(f"unknown layer kind {kind!r}", f"expected one of: {', '.join(TASKS)}")
    names = clean_labels(labels or [])
    if kind == "regions" and BACKGROUND not in names:
        names.insert(0, BACKGROUND)
    with ctx.store.session() as s:
        rows = _rows(s, ctx.project_id)
        if any(r.name == name for r in rows):
            raise ConflictError(f"layer {name!r} exists already", "pick another name")
        parent_row = _named(rows, parent) if parent else None
        owner = s.get(Project, ctx.project_id)
        assert owner is not None
        hidden = Project(uid=uuid.uuid4().hex, name=f"{owner.name[:130]} / {name}", task=kind, settings={},
                         owner_id=owner.id)
        s.add(hidden)
        s.flush()
        for i, label in enumerate(names):
            cls = LabelClass(project_id=hidden.id, name=label, color=palette_color(i), position=i)
            s.add(cls)
            s.flush()
            s.add(ClassEvent(project_id=hidden.id, class_id=cls.id, action="create", detail={"name": label},
                             actor=actor))
        row = Layer(project_id=owner.id, store_id=hidden.id, name=name, kind=kind,
                    parent_id=parent_row.id if parent_row else None,
                    position=max((r.position for r in rows), default=-1) + 1)
        s.add(row)
        s.flush()
        _mirror(s, [r.store_id for r in rows] + [hidden.id])
        info = LayerInfo(row.id, name, kind, parent, row.position, hidden.id)
    return info


def rename_layer(ctx: ProjectContext, name: str, new_name: str) -> LayerInfo:
    """Layer ``name`` of ``ctx``'s project is called ``new_name`` from now on (its work is kept; ``--layer``
    and jobs name it by the new name)."""
    new_name = _check_name(new_name)
    with ctx.store.session() as s:
        rows = _rows(s, ctx.project_id)
        row = _named(rows, name)
        if new_name != row.name and any(r.name == new_name for r in rows):
            raise ConflictError(f"layer {new_name!r} exists already", "pick another name")
        row.name = new_name
        if row.store_id == ctx.id:
            ctx.layer = new_name  # the open context (a server caches it) is of this layer
        hidden, owner = s.get(Project, row.store_id), s.get(Project, ctx.project_id)
        if hidden is not None and owner is not None and hidden.id != owner.id:
            hidden.name = f"{owner.name[:130]} / {new_name}"
        return next(i for i in _infos(rows) if i.id == row.id)


def delete_layer(ctx: ProjectContext, name: str) -> dict[str, Any]:
    """Delete layer ``name`` with its classes, annotations, history and models (the images stay: the
    other layers have them). The first layer is the project itself and a parent goes after its
    children. Returns what went: ``{"layer", "annotations", "models"}``."""
    import shutil

    from labelloop.store.tables import TrainedModel

    with ctx.store.session() as s:
        rows = _rows(s, ctx.project_id)
        row = _named(rows, name)
        if row.store_id == ctx.project_id or row is rows[0]:
            raise InvalidInputError(f"layer {name!r} is the project's first layer, the project itself",
                                    "delete the project instead, or keep this layer")
        children = [r.name for r in rows if r.parent_id == row.id]
        if children:
            raise ConflictError(f"layer {name!r} has layers inside its regions: {', '.join(children)}",
                                "delete those first")
        annotations = s.scalar(select(func.count()).select_from(Annotation)
                               .where(Annotation.project_id == row.store_id)) or 0
        folders = list(s.scalars(select(TrainedModel.directory).where(TrainedModel.project_id == row.store_id)))
        hidden = s.get(Project, row.store_id)
        # the layer's row, its images' rows, classes, annotations, history and models go with its store
        s.delete(hidden if hidden is not None else row)
    for folder in folders:  # after the commit: a failed delete leaves the files of a layer still there
        if folder:
            shutil.rmtree(ctx.root / folder, ignore_errors=True)
    return {"layer": name, "annotations": int(annotations), "models": len(folders)}


def _mirror(s: Session, store_ids: list[int]) -> int:
    """Every image of any of ``store_ids`` present in all of them (new, no annotations); returns the
    rows added."""
    if len(store_ids) < 2:
        return 0
    rows = s.execute(select(Image.project_id, Image.file_name, Image.id).where(Image.project_id.in_(store_ids))).all()
    have: dict[int, set[str]] = defaultdict(set)
    source: dict[str, int] = {}
    for pid, file_name, iid in rows:
        have[pid].add(file_name)
        source.setdefault(file_name, iid)
    added = 0
    for pid in store_ids:
        missing = [source[n] for n in source if n not in have[pid]]
        for start in range(0, len(missing), 500):
            for img in s.scalars(select(Image).where(Image.id.in_(missing[start:start + 500]))):
                s.add(Image(project_id=pid, file_name=img.file_name, storage_path=img.storage_path,
                            linked=img.linked, width=img.width, height=img.height, sha256=img.sha256,
                            split=img.split, status=ImageStatus.NEW, damaged=img.damaged))
                added += 1
    return added


def same_project(s: Session, ctx: ProjectContext, store_id: int) -> bool:
    """Whether ``store_id`` holds a layer of ``ctx``'s project (an image id of another layer shows the same
    pixels)."""
    return s.scalars(select(Layer.id).where(Layer.store_id == store_id, Layer.project_id == ctx.project_id)
                     ).first() is not None


def layer_store_ids(s: Session, ctx: ProjectContext) -> list[int]:
    """The stores of every layer of ``ctx``'s project (each holds its own row of every image);
    ``[ctx.id]`` for a project without layers."""
    return [r.store_id for r in _rows(s, ctx.project_id)] or [ctx.id]


def sync_layer_images(ctx: ProjectContext) -> int:
    """After images were added to one layer: add them to the project's other layers too."""
    with ctx.store.session() as s:
        return _mirror(s, layer_store_ids(s, ctx))


# -- a child inside its parent's regions ---------------------------------------------------------

def _annotation_mask(ann: Annotation, h: int, w: int) -> np.ndarray:
    """The annotation's pixels: its mask, else its rings, else its box (as training reads it)."""
    return rle_to_mask(annotation_rle(ann, h, w)).astype(bool)


def _parent_regions(parent: ProjectContext, file_names: list[str]
                    ) -> dict[str, tuple[Image, list[tuple[Annotation, str]]] | None]:
    """Per file name: ``None`` when the parent layer has not labelled the image, else the parent's
    image and its region annotations (ground truth, background left out) with their class names."""
    out: dict[str, tuple[Image, list[tuple[Annotation, str]]] | None] = {n: None for n in file_names}
    with parent.store.session() as s:
        for start in range(0, len(file_names), 500):
            chunk = file_names[start:start + 500]
            images = s.scalars(select(Image).where(Image.project_id == parent.id, Image.file_name.in_(chunk),
                                                   Image.status.in_(LABELLED_STATUSES))).all()
            by_id = {img.id: img for img in images}
            found: dict[int, list[tuple[Annotation, str]]] = defaultdict(list)
            if by_id:
                for ann, cname in s.execute(
                        select(Annotation, LabelClass.name).join(LabelClass, LabelClass.id == Annotation.class_id)
                        .where(Annotation.image_id.in_(list(by_id)), is_ground_truth(),
                               LabelClass.name != BACKGROUND).order_by(Annotation.id)).all():
                    found[ann.image_id].append((ann, cname))
            for iid, img in by_id.items():
                s.expunge(img)
                for ann, _ in found[iid]:
                    s.expunge(ann)
                out[img.file_name] = (img, found[iid])
    return out


def area_masks(ctx: ProjectContext, file_names: list[str], parent: ProjectContext | None = None
               ) -> dict[str, np.ndarray | None] | None:
    """``None`` for a layer without a parent; else per file name the ``(H, W)`` bool mask of the parent's
    regions on that image, or ``None`` where the parent has not labelled it yet. ``parent``: the
    parent's context when the caller has it already."""
    parent = parent or parent_context(ctx)
    if parent is None:
        return None
    out: dict[str, np.ndarray | None] = {}
    for name, found in _parent_regions(parent, file_names).items():
        if found is None:
            out[name] = None
            continue
        img, anns = found
        mask = np.zeros((img.height, img.width), dtype=bool)
        for ann, _ in anns:
            mask |= _annotation_mask(ann, img.height, img.width)
        out[name] = mask
    return out


def inside_parent_images(ctx: ProjectContext, file_names: list[str]) -> set[str] | None:
    """Of ``file_names``, those on which the parent layer has labelled some region (a child's work is
    there); ``None`` for a layer without a parent."""
    parent = parent_context(ctx)
    if parent is None:
        return None
    return {n for n, found in _parent_regions(parent, file_names).items() if found is not None and found[1]}


def inside_parent(mask: np.ndarray | None, boxes: np.ndarray) -> np.ndarray:
    """Which of ``boxes`` (xyxy) lie inside a parent's region ``mask`` (at least half of each box);
    none where the parent has not labelled the image (``mask`` is ``None``)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if mask is None:
        return np.zeros(len(boxes), dtype=bool)
    return boxes_inside(mask, boxes)


def _outline(ann: Annotation) -> list[list[float]]:
    if ann.polygons:
        return [list(map(float, ring)) for ring in ann.polygons]
    if ann.rle is not None:
        return mask_to_polygons(rle_to_mask(ann.rle))
    return [box_ring(ann)]


def parent_regions_view(ctx: ProjectContext, image_id: int) -> dict[str, Any]:
    """What the annotate page draws faintly under a child layer's image: its parent's regions there
    (outlines, with the parent's class colours); ``labelled`` is false while the parent has not
    labelled the image."""
    parent = parent_context(ctx)
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        if img is None or img.project_id != ctx.id:
            raise NotFoundError(f"image {image_id} is not in layer {ctx.layer!r}")
        file_name = img.file_name
    if parent is None:
        return {"layer": None, "labelled": False, "regions": []}
    found = _parent_regions(parent, [file_name])[file_name]
    with parent.store.session() as s:
        colors = dict(s.execute(select(LabelClass.name, LabelClass.color)
                                .where(LabelClass.project_id == parent.id)).all())
    regions = [{"id": ann.id, "label": name, "color": colors.get(name, "#ffffff"), "polygons": _outline(ann)}
               for ann, name in (found[1] if found else [])]
    return {"layer": parent.layer, "labelled": found is not None, "regions": regions}


def region_counts(ctx: ProjectContext) -> list[dict[str, Any]]:
    """Per parent region (one parent annotation on an image the parent labelled): its class, area and
    how many of this layer's objects (ground truth and open proposals apart) lie inside it, per class."""
    parent = parent_context(ctx)
    if parent is None:
        raise InvalidInputError(f"layer {ctx.layer!r} has no parent layer, so no regions to count in",
                                "count per region on a layer made with --parent REGIONS_LAYER")
    with ctx.store.session() as s:
        classes = dict(s.execute(select(LabelClass.id, LabelClass.name).where(LabelClass.project_id == ctx.id)).all())
        images = {img.file_name: img.id for img in s.scalars(select(Image).where(Image.project_id == ctx.id))}
        objects: dict[int, list[tuple[np.ndarray, str, bool]]] = defaultdict(list)
        for ann in s.scalars(select(Annotation).where(Annotation.project_id == ctx.id,
                                                      Annotation.review_state.is_distinct_from(ReviewState.REJECTED))):
            objects[ann.image_id].append((np.array([ann.x1, ann.y1, ann.x2, ann.y2]),
                                          classes.get(ann.class_id, "?"), ann.review_state == ReviewState.PROPOSED))
    rows = []
    for name, found in _parent_regions(parent, sorted(images)).items():
        if found is None:
            continue
        img, anns = found
        for ann, cname in anns:
            mask = _annotation_mask(ann, img.height, img.width)
            counted: dict[str, int] = defaultdict(int)
            open_: dict[str, int] = defaultdict(int)
            here = objects.get(images[name], [])
            inside = boxes_inside(mask, np.array([box for box, _, _ in here]))
            for (_, child_class, is_proposal), within in zip(here, inside, strict=True):
                if within:
                    (open_ if is_proposal else counted)[child_class] += 1
            rows.append({"image": name, "region_id": ann.id, "region_class": cname, "area_px": int(mask.sum()),
                         "counts": dict(counted), "proposed": dict(open_), "total": sum(counted.values())})
    return rows
