"""A validation split's review curves: per class, every candidate's score, hit and review seconds.

What the automatic choices about a model's proposals are made from, so they all price the same
review: the per-class thresholds of ``preannotate --threshold auto`` and the prediction scale a
training run picks (``predict_scale=auto``). For each image, :func:`~labelloop.selection.review_cost.review_deltas`
prices each candidate as the reviewer would handle it and each object left without a proposal as
a click or a draw; :meth:`ReviewCurves.expected_seconds` is then the review time per image with the
time-optimal threshold of every class (:func:`~labelloop.selection.thresholds.pick_min_time`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from labelloop.core.predictions import Predictions, Truth
from labelloop.selection.effort import CostModel
from labelloop.selection.matching import match_detections
from labelloop.selection.review_cost import review_deltas
from labelloop.selection.thresholds import ClassThreshold, pick_min_time, seconds_at

__all__ = ["ClassCurve", "ReviewCurves"]


@dataclass
class ClassCurve:
    """One class's validation candidates: scores, IoU-.5 hits, review deltas; its objects' miss seconds."""

    scores: list[float] = field(default_factory=list)
    tp: list[bool] = field(default_factory=list)
    delta: list[float] = field(default_factory=list)
    n_gt: int = 0
    miss: float = 0.0


@dataclass
class ReviewCurves:
    """The curves of ``n_classes`` classes over the images added so far."""

    n_classes: int
    costs: CostModel = field(default_factory=CostModel)
    curves: list[ClassCurve] = field(default_factory=list)
    n_images: int = 0

    def __post_init__(self) -> None:
        if not self.curves:
            self.curves = [ClassCurve() for _ in range(self.n_classes)]

    def add(self, preds: Predictions, truth: Truth) -> None:
        """One image's candidates against its objects (labels in the same index space)."""
        self.n_images += 1
        tp = match_detections(preds, truth)
        cost = review_deltas(preds, truth, self.costs)
        for k, curve in enumerate(self.curves):
            sel = preds.labels == k
            curve.n_gt += int((truth.labels == k).sum())
            curve.miss += float(cost.miss[truth.labels == k].sum())
            curve.scores.extend(preds.scores[sel].tolist())
            curve.tp.extend(tp[sel].tolist())
            curve.delta.extend(cost.delta[sel].tolist())

    def min_time(self, k: int) -> ClassThreshold:
        """Class ``k``'s time-optimal threshold and the seconds per image it gives (a class without
        validation objects keeps the fallback threshold, and its proposals above it cost deletes)."""
        c = self.curves[k]
        chosen = pick_min_time(np.array(c.scores, dtype=np.float64), np.array(c.tp, dtype=bool), c.n_gt,
                               np.array(c.delta, dtype=np.float64), c.miss, self.n_images)
        if chosen.expected_seconds is None:
            return replace(chosen, expected_seconds=self.seconds_at(k, chosen.threshold))
        return chosen

    def seconds_at(self, k: int, threshold: float) -> float:
        """Expected review seconds per image of class ``k`` when proposing its candidates >= ``threshold``."""
        c = self.curves[k]
        return seconds_at(threshold, np.array(c.scores, dtype=np.float64), np.array(c.delta, dtype=np.float64),
                          c.miss, self.n_images)

    def expected_seconds(self) -> float:
        """Review seconds per image (inspecting it included) at every class's time-optimal threshold."""
        return self.costs.inspect + sum(self.min_time(k).expected_seconds or 0.0 for k in range(self.n_classes))
