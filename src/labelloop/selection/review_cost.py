"""What each proposal would cost or save a reviewer, under the effort cost model.

The rule a reviewer follows (the thresholds of ``labelloop simulate``): a proposal that overlaps a
ground-truth object with IoU >= :data:`ACCEPT_IOU` is accepted (or only relabelled when its class
is wrong); one with IoU in [:data:`MATCH_IOU`, :data:`ACCEPT_IOU`) is fixed; an unmatched one is
deleted; an object nobody proposed is clicked (click-to-box, when the model's candidate at its
centre fits it with IoU >= :data:`ACCEPT_IOU`) or drawn.

On one image, :func:`review_deltas` visits the candidates by descending score (as a threshold
keeps them; ``simulate`` pairs the proposals it got by descending IoU instead, so the two can
differ where proposals compete for one object) and gives each the seconds it *adds* when it is
proposed, relative to its object
being missed: ``accept - miss`` for a good box (negative: it saves time), ``fix - miss`` for a
loose one, ``delete`` for a wrong one. Summing the deltas of the candidates above a threshold
and adding every object's miss cost gives the review time at that threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from labelloop.core.geometry import box_iou
from labelloop.core.predictions import Predictions, Truth
from labelloop.inference.click import click_candidate
from labelloop.selection.effort import CostModel

__all__ = ["ACCEPT_IOU", "MATCH_IOU", "ReviewDeltas", "clickable", "expected_review_seconds", "review_deltas"]

#: a proposal this close to an object is accepted as it is
ACCEPT_IOU = 0.7
#: below this a proposal is not the object at all (deleted, the object drawn)
MATCH_IOU = 0.4
#: a same-class match is preferred over a slightly better other-class one
SAME_CLASS_BONUS = 0.05


@dataclass(frozen=True)
class ReviewDeltas:
    """One image. ``delta``: ``(N,)`` seconds each candidate adds when proposed; ``miss``: ``(M,)``
    seconds each ground-truth object costs when nothing fits it (click or draw)."""

    delta: np.ndarray
    miss: np.ndarray


def clickable(cand_boxes: np.ndarray, cand_scores: np.ndarray, gt_boxes: np.ndarray) -> np.ndarray:
    """``(M,)`` bool: would a click at each object's centre give a box with IoU >= ACCEPT_IOU?"""
    gb = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    cb = np.asarray(cand_boxes, dtype=np.float64).reshape(-1, 4)
    out = np.zeros(len(gb), dtype=bool)
    for j, (x1, y1, x2, y2) in enumerate(gb):
        k = click_candidate(cb, cand_scores, (x1 + x2) / 2, (y1 + y2) / 2)
        out[j] = k is not None and float(box_iou(cb[k : k + 1], gb[j : j + 1])[0, 0]) >= ACCEPT_IOU
    return out


def review_deltas(preds: Predictions, truth: Truth, costs: CostModel, *, use_click: bool = True) -> ReviewDeltas:
    """Seconds per candidate and per missed object on one image (see the module docstring).

    Args:
        preds: the model's candidates.
        truth: the ground truth (labels in the same index space).
        use_click: price a missed object as a click when click-to-box would find it.
    """
    pb, ps, pl = preds.boxes.astype(np.float64), preds.scores.astype(np.float64), preds.labels
    gb, gl = truth.boxes, truth.labels
    miss = np.full(len(gb), costs.draw, dtype=np.float64)
    if use_click and len(gb):
        miss[clickable(pb, ps, gb)] = min(costs.click, costs.draw)
    delta = np.full(len(pb), costs.delete, dtype=np.float64)
    if not len(pb) or not len(gb):
        return ReviewDeltas(delta, miss)
    iou = box_iou(pb, gb)
    taken = np.zeros(len(gb), dtype=bool)
    for i in np.argsort(-ps, kind="stable"):
        pref = np.where(~taken & (iou[i] >= MATCH_IOU), iou[i] + SAME_CLASS_BONUS * (gl == pl[i]), -1.0)
        j = int(np.argmax(pref))
        if pref[j] < 0:
            continue
        taken[j] = True
        if iou[i, j] >= ACCEPT_IOU:
            cost = costs.accept if gl[j] == pl[i] else costs.class_change
        else:
            cost = costs.fix if gl[j] == pl[i] else costs.fix + costs.class_change
        delta[i] = cost - miss[j]
    return ReviewDeltas(delta, miss)


def expected_review_seconds(scores: np.ndarray, labels: np.ndarray, thresholds: Sequence[float] | np.ndarray,
                            costs: CostModel, floor: float = 0.05) -> float:
    """Review seconds an image is expected to cost from its predictions alone (no ground truth).

    ``inspect``, then each proposal at or above its class threshold is taken as right with
    probability = its score (accepted) and wrong otherwise (deleted); each candidate between
    ``floor`` and the threshold is an object the person adds with probability = its score (drawn).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    t = np.asarray(thresholds, dtype=np.float64)[np.asarray(labels, dtype=np.int64).reshape(-1)] \
        if len(s) else np.zeros(0)
    shown = s >= t
    below = ~shown & (s >= floor)
    return float(costs.inspect + (s[shown] * costs.accept + (1 - s[shown]) * costs.delete).sum()
                 + (s[below] * costs.draw).sum())
