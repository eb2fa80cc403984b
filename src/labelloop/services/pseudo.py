"""Self-training: the previous round's model labels unlabelled images for the next training only.

With the training argument ``self_train=true`` and a parent model (``train --from``, every round of
the loop), the parent predicts on up to twice as many unlabelled images as there are labelled
training images; its boxes above a high per-class threshold (the lowest reaching 90 % precision on
its validation images, never below 0.5; a class that never reaches it gets none) become
*pseudo-labels*. The images join the training split with half the sampling weight of a labelled
image. Pseudo-labels live in memory for that run: they never enter the store as annotations,
proposals or history. In a child layer only images with parent regions are pseudo-labelled, only
boxes inside those regions are kept, and the training sees the regions as the image's area, as it
does for labelled images. (A resumed run trains without them; with ``num_clones > 1`` the weights
are not applied.)
"""

from __future__ import annotations

import random
from dataclasses import replace
from typing import Any

import numpy as np
from sqlalchemy import select

from labelloop.core.geometry import mask_to_rle
from labelloop.core.progress import StageProgress
from labelloop.core.records import UNLABELLED_STATUSES
from labelloop.core.samples import Sample, TrainingData
from labelloop.errors import InvalidInputError
from labelloop.services.datasets import image_path
from labelloop.services.layers import area_masks, inside_parent, inside_parent_images
from labelloop.services.preannotate import (
    choose_thresholds,
    load_model_predictor,
    read_rgb,
)
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Image, TrainedModel

__all__ = ["PSEUDO_MIN_PRECISION", "PSEUDO_MIN_SCORE", "PSEUDO_WEIGHT", "add_pseudo_labels", "pseudo_samples"]

#: a pseudo-labelled image is drawn half as often as a labelled one
PSEUDO_WEIGHT = 0.5
#: per-class threshold: the lowest reaching this precision on the parent's validation images ...
PSEUDO_MIN_PRECISION = 0.9
#: ... and never below this score
PSEUDO_MIN_SCORE = 0.5
#: at most this many unlabelled images per labelled training image
PSEUDO_PER_LABELLED = 2



def _pool(ctx: ProjectContext, n: int, seed: int) -> list[tuple[int, str, str, int, int]]:
    """Up to ``n`` unlabelled images ``(id, file name, storage path, width, height)``, at random; in a
    child layer, of those with parent regions."""
    with ctx.store.session() as s:
        rows = s.execute(select(Image.id, Image.file_name, Image.storage_path, Image.width, Image.height).where(
            Image.project_id == ctx.id, Image.status.in_(UNLABELLED_STATUSES), Image.sha256 != "")
            .order_by(Image.id)).all()
    pool = [(int(i), str(f), str(p), int(w), int(h)) for i, f, p, w, h in rows]
    inside = inside_parent_images(ctx, [r[1] for r in pool])
    if inside is not None:
        pool = [r for r in pool if r[1] in inside]
    return random.Random(seed).sample(pool, min(n, len(pool)))


def pseudo_samples(ctx: ProjectContext, parent: TrainedModel, classes: list[str], n_images: int, *, seed: int = 0,
                   predictor: Any = None, progress: StageProgress | None = None) -> list[Sample]:
    """Pseudo-labelled samples (``weight`` :data:`PSEUDO_WEIGHT`) of up to ``n_images`` unlabelled images.

    ``classes`` is the training class order; parent classes not in it are dropped. Images the parent
    finds nothing confident on, and images that cannot be read, are left out.
    """
    predictor = predictor or load_model_predictor(ctx, parent)
    chosen = choose_thresholds(ctx, parent, predictor, target_precision=PSEUDO_MIN_PRECISION, cache=False)
    # a class whose validation boxes never reach the precision gets no pseudo-labels (threshold above 1)
    floor = np.array([max(PSEUDO_MIN_SCORE, chosen[n].threshold) if n in chosen and chosen[n].method ==
                      "target-precision" else 2.0 for n in predictor.classes])
    to_train = np.array([classes.index(n) if n in classes else -1 for n in predictor.classes], dtype=np.int64)
    pool = _pool(ctx, n_images, seed)
    areas = area_masks(ctx, [r[1] for r in pool])  # None outside a child layer
    out: list[Sample] = []
    for done, (image_id, name, storage, width, height) in enumerate(pool, 1):
        path = image_path(ctx, storage)
        try:
            preds = predictor.predict(read_rgb(path))
        except InvalidInputError:
            continue
        keep = (preds.scores >= floor[preds.labels]) & (to_train[preds.labels] >= 0) if len(preds) else \
            np.zeros(0, bool)
        area = areas.get(name) if areas is not None else None
        if areas is not None:
            keep &= inside_parent(area, preds.boxes)
        if keep.any():
            masks = [m for m, k in zip(preds.masks, keep, strict=True) if k] if preds.masks is not None else None
            out.append(Sample(image_id, path, width, height, preds.boxes[keep], to_train[preds.labels[keep]],
                              masks if ctx.task == "segment" else None, weight=PSEUDO_WEIGHT,
                              area=None if area is None or area.all() else mask_to_rle(area)))
        if progress:
            progress("pseudo-label", done, len(pool))
    return out


def add_pseudo_labels(ctx: ProjectContext, data: TrainingData, parent: TrainedModel | None, *, seed: int = 0,
                      predictor: Any = None, progress: StageProgress | None = None) -> tuple[TrainingData, int]:
    """``data`` with the parent's pseudo-labelled images added to the train split, and how many were added
    (none without a parent, for ``regions`` or when the parent is not ready)."""
    if parent is None or parent.status != "ready" or data.task == "regions":
        return data, 0
    extra = pseudo_samples(ctx, parent, data.classes, PSEUDO_PER_LABELLED * len(data.train), seed=seed,
                           predictor=predictor, progress=progress)
    return replace(data, train=[*data.train, *extra]), len(extra)
