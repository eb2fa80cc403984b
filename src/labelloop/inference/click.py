"""Click-to-box: the model's best candidate at a point a person clicked.

Pure numpy. The candidates are a model's raw output on one image (every box above the
model's own low score floor, not only the proposals above the class thresholds): a missed
object usually has a candidate there, just below its class threshold.

Rule (one definition, used by the API and by ``simulate``): among the candidates whose box
contains the point and that do not repeat an annotation already on the image (IoU >=
``repeat_iou`` with it), take the highest ``score * centrality``, where centrality is 1 at the
box centre and 0.5 at its edge (a person clicks an object near its middle; a big box that
merely contains the point ranks below the box centred on it). The geometry comes from any class;
the class is the one the person has active, or the candidate's own.
"""

from __future__ import annotations

import numpy as np

from labelloop.core.geometry import box_iou

__all__ = ["REPEAT_IOU", "click_candidate"]

#: a candidate overlapping an existing annotation this much is that annotation again
REPEAT_IOU = 0.7


def click_candidate(boxes: np.ndarray, scores: np.ndarray, x: float, y: float,
                    existing: np.ndarray | None = None, repeat_iou: float = REPEAT_IOU) -> int | None:
    """Index of the candidate a click at ``(x, y)`` picks, or ``None`` when none fits.

    Args:
        boxes: ``(N, 4)`` xyxy candidate boxes in image pixels.
        scores: ``(N,)`` their scores.
        x, y: the click, in image pixels.
        existing: ``(M, 4)`` xyxy boxes already on the image (never picked again).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not len(b):
        return None
    inside = (b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])
    if existing is not None and len(existing):
        inside &= ~(box_iou(b, np.asarray(existing, dtype=np.float64).reshape(-1, 4)) >= repeat_iou).any(axis=1)
    if not inside.any():
        return None
    half_w = np.maximum((b[:, 2] - b[:, 0]) / 2, 1e-6)
    half_h = np.maximum((b[:, 3] - b[:, 1]) / 2, 1e-6)
    off = np.maximum(np.abs(x - (b[:, 0] + b[:, 2]) / 2) / half_w, np.abs(y - (b[:, 1] + b[:, 3]) / 2) / half_h)
    rank = np.where(inside, s * (1.0 - 0.5 * np.clip(off, 0.0, 1.0)), -1.0)
    return int(np.argmax(rank))
