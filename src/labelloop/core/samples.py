"""What training, evaluation and inference read: one image with its objects.

Built by :mod:`labelloop.services.datasets` from the store, or generated in tests.
Everything is in pixels of the original image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Sample", "TrainingData"]


@dataclass(frozen=True)
class Sample:
    """One labelled image.

    Attributes:
        image_id: the store's image id (or any stable int in tests).
        path: a readable image file (any format Pillow opens).
        width, height: size of the image in pixels.
        boxes: ``(N, 4)`` float32, ``xyxy`` in pixels.
        labels: ``(N,)`` int64, 0-based index into ``TrainingData.classes``.
        masks: ``None`` for detection, else N COCO RLE dicts (``{"size": [h, w], "counts": str}``).
        regions: polygons (flat ``[x0, y0, x1, y1, ...]`` in pixels) inside which the
            annotation is complete; empty means the whole image is annotated.
        area: a COCO RLE mask that further limits where the annotation is complete (a child
            layer's image: its parent layer's regions); ``None``: no limit.
        weight: how often training draws the image relative to a labelled one (pseudo-labels < 1).
    """

    image_id: int
    path: Path
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    masks: list[dict[str, Any]] | None = None
    regions: list[list[float]] = field(default_factory=list)
    area: dict[str, Any] | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(boxes) != len(labels):
            raise ValueError(f"Sample {self.image_id}: {len(boxes)} boxes but {len(labels)} labels")
        if self.masks is not None and len(self.masks) != len(boxes):
            raise ValueError(f"Sample {self.image_id}: {len(boxes)} boxes but {len(self.masks)} masks")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)


    def complete_area(self) -> np.ndarray | None:
        """``(H, W)`` bool: where this image's annotation is complete (``regions`` and ``area``); ``None``:
        everywhere."""
        from labelloop.core.geometry import polygons_to_rle, rle_to_mask

        mask = None
        if self.regions:
            mask = rle_to_mask(polygons_to_rle(self.regions, self.height, self.width)).astype(bool)
        if self.area is not None:
            limit = rle_to_mask(self.area).astype(bool)
            mask = limit if mask is None else mask & limit
        return mask


@dataclass(frozen=True)
class TrainingData:
    """A training set: the class list (order defines label indices), task and the split."""

    classes: list[str]
    task: str  # "detect" | "segment" | "regions"
    train: list[Sample]
    val: list[Sample]
