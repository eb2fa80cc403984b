"""The size a trained detector predicts at, chosen on the validation split by the review time it gives.

A detector trained at its input size finds small objects better when it is shown the image
bigger: a 12 px object at 1.5x covers the P3 grid cells that an 18 px one does. Training at
the bigger size costs training time in the square of the scale (768 instead of 640 px: 1.7x),
predicting at it only inference time, which is small beside a round's training. So after
training, the kept weights predict the validation images at each of :data:`SCALES` times the
training size, and the size with the least expected review seconds per image (the time-optimal
per-class thresholds under the default cost model, :class:`~labelloop.selection.review_curves.ReviewCurves`)
becomes the model's ``predict_size`` in ``model.json``: pre-annotation, click-to-box, QA and the
ONNX export all predict at it. A bigger size must save :data:`MARGIN` of the review time to be
chosen over a smaller one (a few validation images are noisy, and it costs inference time), and
the sizes are tried from the smallest up until one gives no better time than the best so far.

``predict_scale=1`` keeps the training size; ``predict_scale=1.5`` fixes the scale; ``auto`` (the
default) chooses. Regions models (one class per pixel) keep the training size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labelloop.core.predictions import Truth
from labelloop.core.samples import Sample
from labelloop.inference.torch_engine import predict_arrays
from labelloop.models.builders import set_input_size
from labelloop.selection.review_curves import ReviewCurves
from labelloop.training.data import load_rgb
from labelloop.training.metrics import inside_areas

__all__ = ["MARGIN", "MAX_IMAGES", "MAX_PREDICT_SIZE", "SCALES", "ScaleChoice", "candidate_sizes",
           "choose_predict_size"]

#: the scales of the training size that ``auto`` compares
SCALES = (1.0, 1.25, 1.5, 2.0)
#: validation images the choice predicts (evenly spaced over the split): 4 sizes each
MAX_IMAGES = 40
#: a bigger size is chosen only when it saves this share of the smaller one's review seconds
MARGIN = 0.02
#: never predict beyond this longest side (memory and time grow with its square)
MAX_PREDICT_SIZE = 2048


@dataclass(frozen=True)
class ScaleChoice:
    """The chosen size and, for each size compared, the expected review seconds per image it gave."""

    predict_size: int
    scale: float
    compared: list[dict[str, float]]

    def as_meta(self) -> dict[str, object]:
        return {"predict_size": self.predict_size, "predict_scale": self.scale, "predict_sizes": self.compared}


def candidate_sizes(image_size: int, predict_scale: float) -> list[int]:
    """The sizes to compare: ``predict_scale`` fixed (> 0) or :data:`SCALES` (``0`` = auto), multiples of 32."""
    scales = (predict_scale,) if predict_scale > 0 else SCALES
    sizes = {min(MAX_PREDICT_SIZE, max(32, round(image_size * s / 32) * 32)) for s in scales}
    return sorted(sizes | ({image_size} if predict_scale <= 0 else set()))


def _subset(samples: Sequence[Sample]) -> list[Sample]:
    if len(samples) <= MAX_IMAGES:
        return list(samples)
    return [samples[int(i)] for i in np.linspace(0, len(samples) - 1, MAX_IMAGES).round()]


def _review_seconds(model: nn.Module, size: int, samples: Sequence[Sample], n_classes: int,
                    device: torch.device | str, tile_size: int, batch: int = 4) -> float:
    """Expected review seconds per image when ``model`` predicts ``samples`` at ``size`` (decoded a
    batch at a time: big images are not all held at once)."""
    set_input_size(model, size)
    preds = {}
    for start in range(0, len(samples), batch):
        chunk = samples[start : start + batch]
        out = predict_arrays(model, [load_rgb(s.path) for s in chunk], device, tile_size, batch)
        preds.update({s.image_id: p for s, p in zip(chunk, out, strict=True)})
    kept_samples, kept = inside_areas(samples, preds)
    curves = ReviewCurves(n_classes)
    for smp in kept_samples:
        curves.add(kept[smp.image_id], Truth(smp.boxes, smp.labels))
    return curves.expected_seconds()


def choose_predict_size(model: nn.Module, samples: Sequence[Sample], n_classes: int, image_size: int,
                        predict_scale: float, *, device: torch.device | str = "cpu", tile_size: int = 0,
                        progress: Callable[[int, int, int, float], None] | None = None) -> ScaleChoice:
    """Compare the sizes of :func:`candidate_sizes` on ``samples`` (the validation split) and pick one.

    ``progress(done, total, size, seconds_per_image)`` after each size. ``model`` is left
    predicting at its training size. With one size to compare (a fixed
    ``predict_scale``) or no validation images, that size is taken without predicting anything.
    """
    sizes = candidate_sizes(image_size, predict_scale)
    chosen = _subset(samples)
    if len(sizes) == 1 or not chosen:
        size = sizes[0] if predict_scale > 0 else image_size
        return ScaleChoice(size, round(size / image_size, 4), [])
    seconds: dict[int, float] = {}
    best = sizes[0]
    try:
        for i, size in enumerate(sizes):
            seconds[size] = _review_seconds(model, size, chosen, n_classes, device, tile_size)
            if progress:
                progress(i + 1, len(sizes), size, seconds[size])
            if seconds[size] < seconds[best] * (1 - MARGIN):
                best = size
            elif size != best:
                break  # review time rises again past its best size: bigger ones are not tried
    finally:
        set_input_size(model, image_size)
    compared = [{"size": s, "scale": round(s / image_size, 4), "seconds_per_image": round(seconds[s], 3)}
                for s in sizes if s in seconds]
    return ScaleChoice(best, round(best / image_size, 4), compared)
