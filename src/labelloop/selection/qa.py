"""Label-error QA: compare ground truth with (out-of-fold) predictions, find duplicates and
classes whose object sizes vary too widely. Pure functions on arrays.

Kinds of issue and their score (in ``[0, 1]``, higher = more likely a real error):

- ``wrong_class``: a confident prediction of another class covers a labelled box
  (IoU >= ``class_iou``) and no prediction of the labelled class does; score = its confidence.
- ``missing_box``: a confident prediction overlaps no labelled box (IoU < ``missing_iou``);
  score = its confidence.
- ``bad_box``: the best prediction of the same class overlaps a labelled box only by
  IoU 0.3-0.6; score = confidence x how far the IoU falls below 0.6 (a mild kind: at most 0.9x).
- ``duplicate``: two labelled boxes of one class with IoU > ``duplicate_iou``; score = IoU.
- ``size_spread``: the 5-95 percentile range of a class's object scale (sqrt of area) spans
  more than ``max_scale_ratio``; score grows with the log of the range.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from labelloop.core.geometry import box_iou
from labelloop.core.predictions import Predictions, Truth

__all__ = ["LabelIssue", "QAThresholds", "duplicate_issues", "image_label_issues", "size_spread_issues"]


@dataclass(frozen=True)
class QAThresholds:
    min_score: float = 0.5
    class_iou: float = 0.6
    missing_iou: float = 0.3
    bad_iou: tuple[float, float] = (0.3, 0.6)
    duplicate_iou: float = 0.8
    max_scale_ratio: float = 10.0
    min_objects_for_spread: int = 10


@dataclass(frozen=True)
class LabelIssue:
    kind: str
    score: float
    message: str
    image_id: int | None = None
    annotation_id: int | None = None
    label: str | None = None
    predicted_label: str | None = None
    bbox: tuple[float, float, float, float] | None = None
    iou: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "image_id": self.image_id, "annotation_id": self.annotation_id,
                "score": round(self.score, 4), "message": self.message, "label": self.label,
                "predicted_label": self.predicted_label,
                "bbox": [round(v, 1) for v in self.bbox] if self.bbox is not None else None,
                "iou": round(self.iou, 3) if self.iou is not None else None}


def _box(b: np.ndarray) -> tuple[float, float, float, float]:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


def image_label_issues(image_id: int, truth: Truth, preds: Predictions, classes: Sequence[str],
                       th: QAThresholds | None = None) -> list[LabelIssue]:
    """Issues on one image (``truth`` with its annotation ids); labels index ``classes``."""
    th = th or QAThresholds()
    gb, gl, gt_ids = truth.boxes, truth.labels, truth.ids
    keep = preds.scores >= th.min_score
    pb, ps, pl = preds.boxes[keep].astype(np.float64), preds.scores[keep].astype(np.float64), preds.labels[keep]
    issues: list[LabelIssue] = []
    iou = box_iou(gb, pb) if len(gb) and len(pb) else np.zeros((len(gb), len(pb)))
    for g in range(len(gb)):
        same = np.where(pl == gl[g], iou[g], 0.0)
        other = np.where(pl != gl[g], iou[g], 0.0)
        best_same = float(same.max()) if len(pb) else 0.0
        if len(pb) and other.max() >= th.class_iou and best_same < 0.5:
            p = int(np.argmax(np.where(other >= th.class_iou, ps, -1.0)))
            issues.append(LabelIssue(
                "wrong_class", float(ps[p]),
                f"labelled {classes[gl[g]]}, the model sees {classes[pl[p]]} ({ps[p]:.2f}) at IoU {iou[g, p]:.2f}",
                image_id, int(gt_ids[g]), classes[gl[g]], classes[pl[p]], _box(gb[g]), float(iou[g, p])))
        elif len(pb) and th.bad_iou[0] <= best_same < th.bad_iou[1]:
            p = int(np.argmax(same))
            off = (th.bad_iou[1] - best_same) / (th.bad_iou[1] - th.bad_iou[0])
            issues.append(LabelIssue(
                "bad_box", float(ps[p]) * (0.5 + 0.4 * off),
                f"{classes[gl[g]]} box overlaps the model's box only by IoU {best_same:.2f}; is it placed well?",
                image_id, int(gt_ids[g]), classes[gl[g]], classes[pl[p]], _box(gb[g]), best_same))
    for p in range(len(pb)):
        best = float(iou[:, p].max()) if len(gb) else 0.0
        if best < th.missing_iou:
            issues.append(LabelIssue(
                "missing_box", float(ps[p]),
                f"the model sees a {classes[pl[p]]} ({ps[p]:.2f}) where nothing is labelled",
                image_id, None, None, classes[pl[p]], _box(pb[p]), best))
    return issues


def duplicate_issues(image_id: int, truth: Truth, classes: Sequence[str],
                     th: QAThresholds | None = None) -> list[LabelIssue]:
    """Pairs of same-class labelled boxes overlapping by IoU > ``duplicate_iou`` (no model needed)."""
    th = th or QAThresholds()
    gb, gl, gt_ids = truth.boxes, truth.labels, truth.ids
    if len(gb) < 2:
        return []
    iou = box_iou(gb, gb)
    out = []
    for a, b in zip(*np.nonzero(np.triu(iou, 1) > th.duplicate_iou), strict=True):
        if gl[a] == gl[b]:
            out.append(LabelIssue("duplicate", float(iou[a, b]),
                                  f"two {classes[gl[a]]} boxes overlap by IoU {iou[a, b]:.2f} "
                                  f"(annotations {gt_ids[a]} and {gt_ids[b]})",
                                  image_id, int(gt_ids[b]), classes[gl[a]], None, _box(gb[b]), float(iou[a, b])))
    return out


def size_spread_issues(areas: Mapping[str, Sequence[float]], th: QAThresholds | None = None) -> list[LabelIssue]:
    """Classes whose object scale (sqrt of box area, px) spans > ``max_scale_ratio`` (5th-95th pct)."""
    th = th or QAThresholds()
    out = []
    for name, values in areas.items():
        a = np.asarray(values, dtype=np.float64)
        a = a[a > 0]
        if a.size < th.min_objects_for_spread:
            continue
        lo, hi = np.percentile(np.sqrt(a), [5, 95])
        ratio = hi / max(lo, 1e-6)
        if ratio > th.max_scale_ratio:
            score = float(min(1.0, np.log10(ratio) / 2.0))
            out.append(LabelIssue(
                "size_spread", score,
                f"{name} objects range from ~{lo:.0f} to ~{hi:.0f} px ({ratio:.0f}x, log-area std "
                f"{np.log(a).std():.2f}); one detector class may not fit both: consider splitting the class "
                "by size or training with tile_size", None, None, name))
    return out
