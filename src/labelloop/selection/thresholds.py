"""Per-class score thresholds for pre-annotation, chosen on the validation split.

``auto`` picks, for each class, the threshold that minimises the *expected review seconds per
image* under the effort cost model (:func:`pick_min_time`): each validation candidate above the
threshold is priced as the reviewer would handle it (accept, fix, relabel or delete, see
:mod:`labelloop.selection.review_cost`), each object left without a proposal as a click or a
full draw. A missed object costs 7 s to draw and a wrong proposal 1 s to delete, so this
threshold is usually lower than the best-F1 one.

``best-f1`` keeps the earlier rule: the best F1 point, not allowed below
:data:`MIN_USEFUL_PRECISION` (a weak model's best-F1 point can sit at 5% precision). With a
target precision ``P`` the *lowest* threshold whose precision is >= ``P`` (most recall at that
precision). Classes without validation objects or detections fall back to :data:`FALLBACK_THRESHOLD`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from labelloop.errors import ConfigError

__all__ = ["FALLBACK_THRESHOLD", "MIN_USEFUL_PRECISION", "NEVER", "RULES", "ClassThreshold", "ThresholdRequest",
           "parse_threshold", "pick_min_time", "pick_threshold", "pr_curve", "seconds_at"]

#: how ``auto`` chooses: ``min-time`` (the default) or ``best-f1`` (the earlier rule)
RULES = ("min-time", "best-f1")

#: used when a class has no validation objects or detections to choose from
FALLBACK_THRESHOLD = 0.5
#: below this precision proposals cost a reviewer more (rejecting: 1 s each) than they save
#: (accepting instead of drawing: 6.5 s each) once several are wrong for each right one
MIN_USEFUL_PRECISION = 0.3
#: "propose nothing": no score exceeds it
NEVER = 1.0


@dataclass(frozen=True)
class ClassThreshold:
    """The chosen threshold of one class and what it achieved on the validation split.

    ``method``: ``min-time`` (least expected review time) | ``best-f1`` |
    ``target-precision`` | ``target-unreached`` (best F1 used because
    no threshold reaches the target) | ``min-precision`` (best F1 raised to the minimum useful
    precision) | ``too-weak`` (nothing proposed) | ``fallback`` (no data) | ``given`` (set by the user).
    """

    threshold: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    n_gt: int = 0
    n_detections: int = 0
    method: str = "best-f1"
    #: expected review seconds per validation image spent on this class's objects and proposals
    expected_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        # the threshold is kept exact: a rounded 0.95 would drop float32 scores of 0.9499999
        return {k: (round(v, 4) if isinstance(v, float) and k != "threshold" else v)
                for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ThresholdRequest:
    """What the user asked for: ``given`` thresholds per class; ``default`` for the others
    (``None`` = choose the others automatically)."""

    given: dict[str, float]
    default: float | None
    rule: str = "min-time"

    @property
    def needs_auto(self) -> bool:
        return self.default is None

    def resolve(self, classes: Sequence[str], auto: dict[str, ClassThreshold] | None = None
                ) -> dict[str, ClassThreshold]:
        """The threshold of every class: given > default > auto."""
        out = {}
        for name in classes:
            if name in self.given:
                out[name] = ClassThreshold(self.given[name], method="given")
            elif self.default is not None:
                out[name] = ClassThreshold(self.default, method="given")
            elif auto is not None and name in auto:
                out[name] = auto[name]
            else:
                out[name] = ClassThreshold(FALLBACK_THRESHOLD, method="fallback")
        return out


def _score(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"threshold for {what}: expected auto, best-f1 or a number in [0, 1], got {text!r}",
                          'e.g. --threshold auto, --threshold 0.4 or --threshold "car=0.6;person=0.3"') from None
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"threshold for {what}: expected a number in [0, 1], got {text!r}")
    return value


def parse_threshold(text: str | float | None, classes: Sequence[str]) -> ThresholdRequest:
    """Parse ``auto``, ``best-f1``, ``0.4``, ``"car=0.6;person=0.3"`` or ``"0.4;car=0.6"``.

    Unnamed classes get the bare number if one is given, else ``auto`` (or ``best-f1`` when
    that word is one of the terms, e.g. ``"best-f1;car=0.6"``).
    """
    if text is None or (isinstance(text, str) and text.strip().lower() in ("", "auto")):
        return ThresholdRequest({}, None)
    if isinstance(text, int | float):
        return ThresholdRequest({}, _score(str(text), "all classes"))
    given: dict[str, float] = {}
    default: float | None = None
    rule = "min-time"
    for part in (p.strip() for p in re.split(r"[;,]", text)):
        if not part:
            continue
        if "=" not in part:
            word = part.lower().replace("_", "-")
            if word in ("auto", "min-time"):
                default = None
            elif word == "best-f1":
                default, rule = None, "best-f1"
            else:
                default = _score(part, "all classes")
            continue
        name, value = (x.strip() for x in part.split("=", 1))
        if name not in classes:
            raise ConfigError(f"unknown class {name!r} in --threshold", f"the model's classes: {', '.join(classes)}")
        given[name] = _score(value, name)
    return ThresholdRequest(given, default, rule)


def _by_score(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order`` (descending score, stable) and, in that order, the last index of each run of equal
    scores: keeping ``score >= s`` keeps every detection with that score."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-s, kind="stable")
    ranked = s[order]
    last = np.r_[ranked[1:] != ranked[:-1], True] if len(s) else np.zeros(0, dtype=bool)
    return order, last


def pr_curve(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (descending scores), precision and recall when keeping scores >= each threshold."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    order, last = _by_score(s)
    ctp = np.cumsum(np.asarray(tp, dtype=bool).reshape(-1)[order])
    precision = ctp / np.arange(1, len(s) + 1)
    recall = ctp / max(n_gt, 1)
    return s[order][last], precision[last], recall[last]


def pick_threshold(scores: np.ndarray, tp: np.ndarray, n_gt: int, target_precision: float | None = None,
                   min_precision: float | None = MIN_USEFUL_PRECISION) -> ClassThreshold:
    """The threshold of one class from its validation detections (``tp`` flags at IoU .5).

    Without a target precision, a best-F1 point below ``min_precision`` is raised to the lowest
    threshold reaching it (``min-precision``), or to :data:`NEVER` when none does (``too-weak``).
    """
    n_det = int(np.asarray(scores).size)
    if n_gt == 0 or n_det == 0:
        return ClassThreshold(FALLBACK_THRESHOLD, n_gt=n_gt, n_detections=n_det, method="fallback")
    thr, prec, rec = pr_curve(scores, tp, n_gt)
    f1 = 2 * prec * rec / np.maximum(prec + rec, 1e-9)
    method = "best-f1"
    i = int(np.argmax(f1))
    if target_precision is not None:
        ok = np.nonzero(prec >= target_precision)[0]
        if ok.size:
            i, method = int(ok[-1]), "target-precision"  # lowest threshold still at the target
        else:
            method = "target-unreached"
    if min_precision is not None and method != "target-precision" and prec[i] < min_precision:
        ok = np.nonzero(prec >= min_precision)[0]
        if not ok.size:  # no threshold gives useful proposals: propose nothing of this class
            return ClassThreshold(NEVER, float(prec.max()), 0.0, 0.0, n_gt, n_det, "too-weak")
        i, method = int(ok[-1]), "min-precision"
    if f1[i] == 0 and method != "target-precision":
        return ClassThreshold(NEVER, 0.0, 0.0, 0.0, n_gt, n_det, "too-weak")
    return ClassThreshold(float(thr[i]), float(prec[i]), float(rec[i]), float(f1[i]), n_gt, n_det, method)


def pick_min_time(scores: np.ndarray, tp: np.ndarray, n_gt: int, delta: np.ndarray, miss_seconds: float,
                  n_images: int) -> ClassThreshold:
    """The threshold of one class with the least expected review time on the validation images.

    Args:
        scores: ``(N,)`` the class's validation candidates' scores.
        tp: ``(N,)`` true positives at IoU .5 (for the precision and recall reported beside it).
        n_gt: the class's validation objects.
        delta: ``(N,)`` seconds each candidate adds when proposed (negative: it saves time),
            from :func:`labelloop.selection.review_cost.review_deltas`.
        miss_seconds: the seconds of the class's objects when nothing is proposed (clicks + draws).
        n_images: validation images (the time is given per image).

    The least time wins; among equal times the higher threshold (fewer proposals). When
    proposing nothing is cheapest the class gets :data:`NEVER` (``too-weak``).
    """
    n_det = int(np.asarray(scores).size)
    per_image = max(n_images, 1)
    if n_gt == 0 or n_det == 0:
        return ClassThreshold(FALLBACK_THRESHOLD, n_gt=n_gt, n_detections=n_det, method="fallback",
                              expected_seconds=round(miss_seconds / per_image, 4) if n_det == 0 else None)
    thr, prec, rec = pr_curve(scores, tp, n_gt)
    order, last = _by_score(scores)  # the time when keeping scores >= each of those thresholds
    seconds = miss_seconds + np.cumsum(np.asarray(delta, dtype=np.float64).reshape(-1)[order])[last]
    if float(seconds.min()) >= miss_seconds - 1e-9:
        return ClassThreshold(NEVER, float(prec.max()), 0.0, 0.0, n_gt, n_det, "too-weak",
                              round(miss_seconds / per_image, 4))
    i = int(np.argmin(seconds))
    f1 = 2 * prec[i] * rec[i] / max(prec[i] + rec[i], 1e-9)
    return ClassThreshold(float(thr[i]), float(prec[i]), float(rec[i]), float(f1), n_gt, n_det, "min-time",
                          round(float(seconds[i]) / per_image, 4))


def seconds_at(threshold: float, scores: np.ndarray, delta: np.ndarray, miss_seconds: float, n_images: int) -> float:
    """Expected review seconds per image of one class when proposing its candidates >= ``threshold``."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    d = np.asarray(delta, dtype=np.float64).reshape(-1)
    kept = float(d[s >= threshold - 1e-6].sum()) if threshold < NEVER else 0.0
    return round((miss_seconds + kept) / max(n_images, 1), 4)
