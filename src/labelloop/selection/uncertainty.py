"""How unsure a detector is about one image, from its predictions alone. All values in ``[0, 1]``.

Boxes are ``(N, 4)`` xyxy pixels, scores ``(N,)`` in ``[0, 1]``, labels ``(N,)`` ints.
"""

from __future__ import annotations

import numpy as np

from labelloop.core.geometry import box_iou
from labelloop.core.geometry import flip_xyxy as flip_boxes_xyxy
from labelloop.core.predictions import Predictions
from labelloop.selection.matching import greedy_pairs

__all__ = ["binary_entropy", "class_ambiguity", "flip_boxes_xyxy", "flip_disagreement", "score_uncertainty"]


def binary_entropy(p: np.ndarray) -> np.ndarray:
    """Entropy (bits) of a detection being real at confidence ``p``: 0 at 0 or 1, 1 at 0.5."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1 - 1e-9)
    return -(q * np.log2(q) + (1 - q) * np.log2(1 - q))


def score_uncertainty(scores: np.ndarray, top_k: int = 10, scale: float = 3.0) -> float:
    """``1 - exp(-sum(H) / scale)`` over the ``top_k`` most uncertain detections.

    Summing (not averaging) rewards images with several ambiguous objects; ``top_k`` keeps a
    cloud of near-zero-score noise from dominating. One box at 0.5 -> 0.28, five -> 0.81.
    """
    h = np.sort(binary_entropy(np.asarray(scores).reshape(-1)))[::-1][:top_k]
    return float(1.0 - np.exp(-h.sum() / scale)) if h.size else 0.0


def class_ambiguity(preds: Predictions, *, iou: float = 0.5, min_score: float = 0.2) -> float:
    """Largest ``low / high`` score ratio of two overlapping boxes of *different* classes.

    1 = the model cannot decide between two classes for one object (a zero class margin).
    """
    s = preds.scores.astype(np.float64)
    keep = s >= min_score
    b, s, lab = preds.boxes[keep], s[keep], preds.labels[keep]
    if len(s) < 2:
        return 0.0
    ov = box_iou(b, b) >= iou
    other = lab[:, None] != lab[None, :]
    ratio = np.minimum(s[:, None], s[None, :]) / np.maximum(s[:, None], s[None, :])
    cand = np.where(ov & other, ratio, 0.0)
    return float(cand.max())


def flip_disagreement(preds: Predictions, flipped: Predictions, width: float, *,
                      min_score: float = 0.2, min_iou: float = 0.3) -> float:
    """Disagreement between predictions on an image and on its horizontal mirror.

    The mirror's boxes are mapped back, then matched per class (IoU >= ``min_iou``). A matched
    pair costs ``|s1 - s2| + (1 - IoU) * max(s1, s2)`` (capped at ``max``), an unmatched box its
    score; the sum is divided by the total score mass. 0 = the same objects with the same
    confidence, 1 = nothing in common.
    """
    s1, s2 = preds.scores.astype(np.float64), flipped.scores.astype(np.float64)
    k1, k2 = s1 >= min_score, s2 >= min_score
    b1, l1, s1 = preds.boxes[k1], preds.labels[k1], s1[k1]
    b2 = flip_boxes_xyxy(flipped.boxes[k2], width)
    l2, s2 = flipped.labels[k2], s2[k2]
    if not len(s1) and not len(s2):
        return 0.0
    iou = box_iou(b1, b2) * (l1[:, None] == l2[None, :])
    pairs = greedy_pairs(iou, min_iou)
    cost, mass = 0.0, 0.0
    m1, m2 = set(), set()
    for i, j, v in pairs:
        hi = max(s1[i], s2[j])
        cost += min(hi, abs(s1[i] - s2[j]) + (1 - v) * hi)
        mass += hi
        m1.add(i)
        m2.add(j)
    unmatched = [s1[i] for i in range(len(s1)) if i not in m1] + [s2[j] for j in range(len(s2)) if j not in m2]
    cost += float(sum(unmatched))
    mass += float(sum(unmatched))
    return float(cost / mass) if mass > 0 else 0.0
