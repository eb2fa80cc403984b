"""From the store to what training reads: labelled images as Samples, split 80/20."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from labelloop.core.geometry import mask_to_rle
from labelloop.core.records import LABELLED_STATUSES
from labelloop.core.samples import Sample, TrainingData
from labelloop.errors import TrainingError
from labelloop.services.layers import area_masks, parent_context
from labelloop.services.splitting import assign_splits
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass, TrainingRegion, annotation_rle, is_ground_truth

__all__ = ["image_path", "sample_for_images", "snapshot", "training_data"]



def image_path(ctx: ProjectContext, storage_path: str) -> Path:
    path = Path(storage_path)
    return path if path.is_absolute() else ctx.root / path


def _classes(ctx: ProjectContext) -> list[tuple[int, str]]:
    with ctx.store.session() as s:
        return [(cid, name) for cid, name in s.execute(
            select(LabelClass.id, LabelClass.name).where(LabelClass.project_id == ctx.id,
                                                         LabelClass.active.is_(True))
            .order_by(LabelClass.position)).all()]


def _samples(ctx: ProjectContext, images: list[Image], index: dict[int, int], task: str) -> list[Sample]:
    ids = [img.id for img in images]
    objects: dict[int, list[Annotation]] = defaultdict(list)
    regions: dict[int, list[list[float]]] = defaultdict(list)
    with ctx.store.session() as s:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            for ann in s.scalars(select(Annotation).where(Annotation.image_id.in_(chunk), is_ground_truth())
                                 .order_by(Annotation.id)):
                if ann.class_id in index:
                    objects[ann.image_id].append(ann)
            for reg in s.scalars(select(TrainingRegion).where(TrainingRegion.image_id.in_(chunk))):
                regions[reg.image_id].append(list(reg.polygon))
    out = []
    for img in images:
        anns = objects[img.id]
        masks = None
        if task in ("segment", "regions"):
            masks = [annotation_rle(a, img.height, img.width) for a in anns]
        out.append(Sample(image_id=img.id, path=image_path(ctx, img.storage_path), width=img.width,
                          height=img.height,
                          boxes=np.array([[a.x1, a.y1, a.x2, a.y2] for a in anns], dtype=np.float32).reshape(-1, 4),
                          labels=np.array([index[a.class_id] for a in anns], dtype=np.int64),
                          masks=masks, regions=regions[img.id]))
    return out


def training_data(ctx: ProjectContext, *, seed: int = 0) -> TrainingData:
    """Labelled images of the project, split (the split is created/extended stably if needed)."""
    assign_splits(ctx, seed=seed)
    classes = _classes(ctx)
    if ctx.task == "regions":
        classes = [c for c in classes if c[1] != "background"]
    index = {cid: i for i, (cid, _) in enumerate(classes)}
    with ctx.store.session() as s:
        images = s.scalars(select(Image).where(Image.project_id == ctx.id, Image.status.in_(LABELLED_STATUSES),
                                               Image.sha256 != "").order_by(Image.id)).all()
    train = _inside_parent(ctx, _samples(ctx, [i for i in images if i.split == "train"], index, ctx.task), images)
    val = _inside_parent(ctx, _samples(ctx, [i for i in images if i.split == "val"], index, ctx.task), images)
    if not train or not val:
        raise TrainingError(f"need labelled images in both train and val, have {len(train)} and {len(val)}",
                            "annotate more images (about 20 objects per class), then train again"
                            + _parent_hint(ctx))
    return TrainingData(classes=[n for _, n in classes], task=ctx.task, train=train, val=val)


def _inside_parent(ctx: ProjectContext, samples: list[Sample], images: Sequence[Image], *,
                   drop: bool = True) -> list[Sample]:
    """A child layer's samples limited to its parent's regions. Images the parent has not labelled, or
    where it has no region, are left out (``drop``: nothing there is this layer's) or kept with an
    empty area."""
    names = {img.id: img.file_name for img in images}
    masks = area_masks(ctx, [names[s.image_id] for s in samples])
    if masks is None:
        return samples
    out = []
    for sample in samples:
        mask = masks.get(names[sample.image_id])
        if mask is None or not mask.any():
            if not drop:
                out.append(replace(sample, area=mask_to_rle(np.zeros((sample.height, sample.width), dtype=bool))))
            continue
        out.append(replace(sample, area=None if mask.all() else mask_to_rle(mask)))
    return out


def _parent_hint(ctx: ProjectContext) -> str:
    parent = parent_context(ctx)
    return f" inside the regions of layer {parent.layer!r} (label them there first)" if parent else ""


def sample_for_images(ctx: ProjectContext, image_ids: list[int]) -> list[Sample]:
    """Samples (with ground truth) for given images, in the project's class order."""
    classes = _classes(ctx)
    index = {cid: i for i, (cid, _) in enumerate(classes)}
    with ctx.store.session() as s:
        images = s.scalars(select(Image).where(Image.id.in_(image_ids)).order_by(Image.id)).all()
    return _inside_parent(ctx, _samples(ctx, list(images), index, ctx.task), images, drop=False)


def snapshot(data: TrainingData) -> dict[str, Any]:
    """What a model saw: image ids per split and object counts (stored with the model)."""
    return {"classes": data.classes, "train_images": [s.image_id for s in data.train],
            "val_images": [s.image_id for s in data.val],
            "n_train_images": len(data.train), "n_val_images": len(data.val),
            "train_objects": int(sum(len(s.labels) for s in data.train)),
            "val_objects": int(sum(len(s.labels) for s in data.val))}
