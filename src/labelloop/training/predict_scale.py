"""The size a trained detector predicts at, chosen on the validation split by the review time it gives.

A detector trained at its input size finds small objects better when it is shown the image
bigger: a 12 px object at 1.5x covers the P3 grid cells that an 18 px one does. Training at
the bigger size costs training time in the square of the scale (768 instead of 640 px: 1.7x),
predicting at it only inference time, which is small beside a round's training. So after
training, the kept weights predict the validation images at each of :data:`SCALES` times the
training size, and the size with the least expected review seconds per image (the time-optimal
per-class thresholds under the project's cost model, :class:`~labelloop.selection.review_curves.ReviewCurves`,
with the mirror view fused in when ``tta`` is on, as the predictor will) becomes the model's
``predict_size`` in ``model.json``: pre-annotation, click-to-box, QA and the ONNX export all
predict at it. A bigger size must save :data:`MARGIN` of the review time to be chosen over a
smaller one (a few validation images are noisy, and it costs inference time), and the sizes are
tried from the smallest up until one gives no better time than the best so far. At most
:data:`MAX_INPUT_PIXELS` of model input are predicted per size (evenly spaced validation images):
the choice costs at most about nine evaluations of the validation split (1 + 1.25² + 1.5² + 2²).

``predict_scale=1`` keeps the training size; ``predict_scale=1.5`` fixes the scale; ``auto`` (the
default) chooses. Regions models (one class per pixel) keep the training size. The validation
metrics of training (mAP per epoch) stay measured at the training size.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from labelloop.core.predictions import Truth
from labelloop.core.samples import Sample
from labelloop.models.builders import set_input_size
from labelloop.selection.effort import CostModel
from labelloop.selection.review_curves import ReviewCurves
from labelloop.training.data import predict_samples
from labelloop.training.metrics import inside_areas

__all__ = ["MARGIN", "MAX_INPUT_PIXELS", "MAX_PREDICT_SIZE", "SCALES", "ScaleChoice", "candidate_sizes",
           "choose_predict_size"]

#: the scales of the training size that ``auto`` compares
SCALES = (1.0, 1.25, 1.5, 2.0)
#: model-input pixels predicted per size compared, at the training size (40 images of 640 x 480)
MAX_INPUT_PIXELS = 40 * 640 * 480
#: a bigger size is chosen only when it saves this share of the smaller one's review seconds
MARGIN = 0.02
#: never predict beyond this longest side (memory and time grow with its square), unless training did
MAX_PREDICT_SIZE = 2048
#: candidate sizes closer than this to the previous one are not compared
MIN_STEP = 1.1


@dataclass(frozen=True)
class ScaleChoice:
    """The chosen size and, for each size compared, the expected review seconds per image it gave."""

    predict_size: int
    scale: float
    compared: list[dict[str, float]]

    def as_meta(self) -> dict[str, object]:
        return {"predict_size": self.predict_size, "predict_sizes": self.compared}


def candidate_sizes(image_size: int, predict_scale: float) -> list[int]:
    """The sizes to compare: the training size itself, then :data:`SCALES` of it (``predict_scale=0``:
    auto) rounded to multiples of 32, each at least :data:`MIN_STEP` times the previous one; or the
    one size ``predict_scale`` fixes."""
    cap = max(MAX_PREDICT_SIZE, image_size)

    def scaled(scale: float) -> int:
        return image_size if scale == 1 else min(cap, max(32, int(image_size * scale / 32 + 0.5) * 32))

    if predict_scale > 0:
        return [scaled(predict_scale)]
    sizes = [image_size]
    for size in map(scaled, SCALES[1:]):
        if size >= sizes[-1] * MIN_STEP:
            sizes.append(size)
    return sizes


def _input_pixels(sample: Sample, image_size: int, tile_size: int) -> float:
    """Pixels of model input ``sample`` takes at ``image_size`` (each tile resized to it when tiled)."""
    longest = max(sample.width, sample.height)
    if tile_size and longest > 1.25 * tile_size:
        return sample.width * sample.height * (image_size / tile_size) ** 2
    return sample.width * sample.height * (image_size / longest) ** 2


def _subset(samples: Sequence[Sample], image_size: int, tile_size: int) -> list[Sample]:
    """Evenly spaced samples whose model input is at most :data:`MAX_INPUT_PIXELS` (at least one)."""
    if not samples:
        return []
    per_image = float(np.mean([_input_pixels(s, image_size, tile_size) for s in samples]))
    n = max(1, min(len(samples), math.floor(MAX_INPUT_PIXELS / max(per_image, 1.0))))
    return [samples[int(i)] for i in np.unique(np.linspace(0, len(samples) - 1, n).round())]


def _review_seconds(model: nn.Module, size: int, samples: Sequence[Sample], n_classes: int, costs: CostModel,
                    device: torch.device | str, tile_size: int, tta: bool) -> float:
    """Expected review seconds per image when ``model`` predicts ``samples`` at ``size``."""
    set_input_size(model, size)
    kept_samples, kept = inside_areas(samples, predict_samples(model, samples, device, tile_size, tta=tta))
    curves = ReviewCurves(n_classes, costs)
    for smp in kept_samples:
        curves.add(kept[smp.image_id], Truth(smp.boxes, smp.labels))
    return curves.expected_seconds()


def choose_predict_size(model: nn.Module, samples: Sequence[Sample], n_classes: int, image_size: int,
                        predict_scale: float, *, costs: CostModel | None = None, device: torch.device | str = "cpu",
                        tile_size: int = 0, tta: bool = False,
                        progress: Callable[[int, int, int, float], None] | None = None,
                        stopped: Callable[[], bool] = lambda: False) -> ScaleChoice:
    """Compare the sizes of :func:`candidate_sizes` on ``samples`` (the validation split) and pick one.

    ``progress(done, total, size, seconds_per_image)`` after each size; once ``stopped()`` the best
    size so far is kept. ``model`` is left predicting at its training size. With one size to compare
    (a fixed ``predict_scale``) or no validation images, that size is taken without predicting anything.
    """
    sizes = candidate_sizes(image_size, predict_scale)
    chosen = _subset(samples, image_size, tile_size)
    if len(sizes) == 1 or not chosen:
        return ScaleChoice(sizes[0], round(sizes[0] / image_size, 4), [])
    seconds: dict[int, float] = {}
    best = sizes[0]
    try:
        for i, size in enumerate(sizes):
            if stopped():
                break
            seconds[size] = _review_seconds(model, size, chosen, n_classes, costs or CostModel(), device, tile_size,
                                            tta)
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
