"""Tiny generated training data: coloured rectangles / ellipses on noise, written as PNGs.

Import as ``from training.synth import make_training_data`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from labelloop.core.geometry import mask_to_rle
from labelloop.core.samples import Sample, TrainingData

__all__ = ["COLORS", "make_sample", "make_training_data"]

COLORS = [(230, 40, 40), (40, 80, 240), (40, 200, 60), (230, 200, 40)]


def _shape_mask(kind: int, h: int, w: int, box: np.ndarray) -> np.ndarray:
    """Class 0: rectangle, class 1: ellipse, others alternate."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[0:h, 0:w]
    if kind % 2 == 0:
        return (xx >= x0) & (xx < x1) & (yy >= y0) & (yy < y1)
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return ((xx + 0.5 - cx) / rx) ** 2 + ((yy + 0.5 - cy) / ry) ** 2 <= 1


def make_sample(root: Path, image_id: int, *, size: tuple[int, int] = (96, 96), n_classes: int = 2,
                n_objects: tuple[int, int] = (1, 3), obj_size: tuple[int, int] = (18, 40), seed: int = 0,
                with_masks: bool = False, regions: list[list[float]] | None = None) -> Sample:
    """One PNG with non-overlapping shapes; boxes are the painted pixels' tight boxes."""
    rng = np.random.default_rng(seed * 1000 + image_id)
    h, w = size
    pixels = rng.integers(60, 140, size=(h, w, 3)).astype(np.uint8)
    boxes, labels, masks = [], [], []
    taken = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(n_objects[0], n_objects[1] + 1))):
        for _attempt in range(20):
            bw, bh = rng.integers(obj_size[0], obj_size[1] + 1, size=2)
            x0, y0 = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            if not taken[max(0, y0 - 2) : y0 + bh + 2, max(0, x0 - 2) : x0 + bw + 2].any():
                break
        else:
            continue
        label = int(rng.integers(0, n_classes))
        m = _shape_mask(label, h, w, np.array([x0, y0, x0 + bw, y0 + bh], dtype=float))
        taken |= m
        pixels[m] = COLORS[label % len(COLORS)]
        ys, xs = np.nonzero(m)
        boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
        labels.append(label)
        masks.append(mask_to_rle(m))
    path = root / f"img_{image_id:04d}.png"
    Image.fromarray(pixels).save(path)
    return Sample(image_id=image_id, path=path, width=w, height=h,
                  boxes=np.array(boxes, dtype=np.float32).reshape(-1, 4), labels=np.array(labels),
                  masks=masks if with_masks else None, regions=regions or [])


def make_training_data(root: Path, *, n_train: int = 16, n_val: int = 8, task: str = "detect",
                       classes: tuple[str, ...] = ("rect", "ellipse"), size: tuple[int, int] = (96, 96),
                       seed: int = 0, **kwargs: object) -> TrainingData:
    """A :class:`TrainingData` of generated images under ``root`` (ids 1..n_train+n_val)."""
    root.mkdir(parents=True, exist_ok=True)
    with_masks = task in ("segment", "regions")
    samples = [make_sample(root, i + 1, size=size, n_classes=len(classes), seed=seed, with_masks=with_masks,
                           **kwargs)  # type: ignore[arg-type]
               for i in range(n_train + n_val)]
    return TrainingData(classes=list(classes), task=task, train=samples[:n_train], val=samples[n_train:])
