"""What a model found in one image: the record training (evaluation, the flipbook), inference and
the loop's services share, so that none of them imports another for it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Predictions", "Truth"]


@dataclass(frozen=True)
class Predictions:
    """What a model found in one image, in pixels of the original image.

    Attributes:
        boxes: ``(N, 4)`` float32 xyxy.
        scores: ``(N,)`` float32 in ``[0, 1]``.
        labels: ``(N,)`` int64, 0-based index into the model's classes.
        masks: ``None`` for detection, else N COCO RLE dicts (``counts`` as str).
        semantic: ``(H, W)`` int64 class map (0 = background, ``k + 1`` = class k) for
            ``regions`` models, else ``None``.
    """

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    masks: list[dict[str, Any]] | None = None
    semantic: np.ndarray | None = None

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(f"Predictions: {len(boxes)} boxes, {len(scores)} scores, {len(labels)} labels")
        if self.masks is not None and len(self.masks) != len(boxes):
            raise ValueError(f"Predictions: {len(boxes)} boxes but {len(self.masks)} masks")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "labels", labels)

    def __len__(self) -> int:
        return len(self.boxes)

    def select(self, keep: np.ndarray) -> Predictions:
        """The subset at indices / boolean mask ``keep``."""
        idx = np.arange(len(self))[keep]
        masks = None if self.masks is None else [self.masks[i] for i in idx]
        return Predictions(self.boxes[idx], self.scores[idx], self.labels[idx], masks, self.semantic)

    def to_json(self) -> dict[str, Any]:
        """Lists for JSON (flipbook, API)."""
        return {"boxes": np.round(self.boxes, 2).tolist(), "scores": np.round(self.scores, 4).tolist(),
                "labels": self.labels.tolist(), "masks": self.masks}

    @staticmethod
    def empty(with_masks: bool = False) -> Predictions:
        return Predictions(np.zeros((0, 4)), np.zeros(0), np.zeros(0), [] if with_masks else None)


@dataclass(frozen=True)
class Truth:
    """The labelled objects of one image, as the loop's scoring compares predictions with them.

    Attributes:
        boxes: ``(M, 4)`` float64 xyxy pixels.
        labels: ``(M,)`` int64 indices into the model's classes (the same space as ``Predictions.labels``).
        ids: the annotation ids, when a finding must name them (QA); else empty.
    """

    boxes: np.ndarray
    labels: np.ndarray
    ids: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if len(boxes) != len(labels) or (self.ids and len(self.ids) != len(boxes)):
            raise ValueError(f"Truth: {len(boxes)} boxes, {len(labels)} labels, {len(self.ids)} ids")
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "ids", tuple(int(i) for i in self.ids))

    def __len__(self) -> int:
        return len(self.boxes)
