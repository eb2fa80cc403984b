"""Matching predictions to ground truth: greedy, by score, per class (COCO style).

All boxes are ``(N, 4)`` float xyxy in pixels. Inputs are never mutated.
"""

from __future__ import annotations

import numpy as np

from labelloop.core.geometry import box_iou
from labelloop.core.predictions import Predictions, Truth

__all__ = ["greedy_pairs", "match_detections"]


def greedy_pairs(iou: np.ndarray, min_iou: float) -> list[tuple[int, int, float]]:
    """Pairs ``(row, col, iou)`` taken greedily by descending IoU, each row/col used once.

    Args:
        iou: ``(N, M)`` IoU matrix.
        min_iou: pairs below this IoU are never made.
    """
    iou = np.asarray(iou, dtype=np.float64)
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= min_iou)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c, float(iou[r, c])))
    return pairs


def match_detections(preds: Predictions, truth: Truth, iou_threshold: float = 0.5) -> np.ndarray:
    """``(N,)`` bool: is each prediction a true positive?

    Predictions are visited by descending score; each takes the unmatched ground-truth box
    of its class with the highest IoU, if that IoU is >= ``iou_threshold`` (as COCO does).
    """
    pb, ps, pl = preds.boxes.astype(np.float64), preds.scores.astype(np.float64), preds.labels
    gb, gl = truth.boxes, truth.labels
    tp = np.zeros(len(pb), dtype=bool)
    if not len(pb) or not len(gb):
        return tp
    iou = box_iou(pb, gb)
    taken = np.zeros(len(gb), dtype=bool)
    for i in np.argsort(-ps, kind="stable"):
        candidates = np.where((gl == pl[i]) & ~taken, iou[i], -1.0)
        j = int(np.argmax(candidates))
        if candidates[j] >= iou_threshold:
            taken[j] = True
            tp[i] = True
    return tp
