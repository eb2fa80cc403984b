"""Per-class thresholds on a PR curve, and the --threshold grammar."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.errors import ConfigError
from labelloop.selection.thresholds import NEVER, parse_threshold, pick_min_time, pick_threshold, pr_curve, seconds_at


def test_pr_curve_counts_ties_together():
    thr, prec, rec = pr_curve(np.array([0.9, 0.8, 0.8, 0.3]), np.array([1, 1, 0, 0], bool), n_gt=2)
    assert thr.tolist() == [0.9, 0.8, 0.3]
    assert np.allclose(prec, [1.0, 2 / 3, 0.5]) and np.allclose(rec, [0.5, 1.0, 1.0])


def test_best_f1_and_target_precision():
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    tp = np.array([1, 1, 1, 0, 1, 0, 0], bool)
    best = pick_threshold(scores, tp, n_gt=4)
    assert best.method == "best-f1" and best.threshold == 0.6 and best.recall == 1.0
    strict = pick_threshold(scores, tp, n_gt=4, target_precision=1.0)
    assert strict.method == "target-precision" and strict.threshold == 0.8 and strict.precision == 1.0
    unreachable = pick_threshold(np.array([0.9]), np.array([False]), n_gt=1, target_precision=0.9)
    assert unreachable.threshold == NEVER  # nothing is right: propose nothing


def test_weak_classes_and_missing_data():
    assert pick_threshold(np.array([]), np.array([], bool), n_gt=3).method == "fallback"
    assert pick_threshold(np.array([0.9]), np.array([True]), n_gt=0).method == "fallback"
    # best F1 at 27% precision is raised to the lowest threshold with >= 30%
    tp = np.array([True] + [False, False, False, True] * 9)
    scores = np.linspace(0.95, 0.05, len(tp))
    assert pick_threshold(scores, tp, n_gt=10, min_precision=None).precision < 0.3
    raised = pick_threshold(scores, tp, n_gt=10)
    assert raised.method == "min-precision" and raised.threshold == scores[12] and raised.precision >= 0.3


def test_parse_threshold():
    classes = ["car", "person"]
    assert parse_threshold("auto", classes).needs_auto
    flat = parse_threshold("0.4", classes)
    assert {k: v.threshold for k, v in flat.resolve(classes).items()} == {"car": 0.4, "person": 0.4}
    mixed = parse_threshold("car=0.6;person=0.3", classes)
    assert mixed.given == {"car": 0.6, "person": 0.3} and mixed.needs_auto
    assert parse_threshold("0.2;car=0.7", classes).resolve(classes)["person"].threshold == 0.2
    with pytest.raises(ConfigError, match="unknown class 'bus'"):
        parse_threshold("bus=0.5", classes)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        parse_threshold("car=1.5", classes)


def test_min_time_threshold_on_a_hand_computable_curve():
    # 4 objects; candidates by score: good, good, wrong, good(loose), wrong, wrong
    scores = np.array([0.9, 0.8, 0.6, 0.5, 0.3, 0.2])
    tp = np.array([1, 1, 0, 1, 0, 0], bool)
    # deltas with draw 7, accept 0.5, fix 3, delete 1: accepting saves 6.5 s, fixing 4 s, a wrong box costs 1 s
    delta = np.array([-6.5, -6.5, 1.0, -4.0, 1.0, 1.0])
    miss = 4 * 7.0  # nothing proposed: draw all 4
    t = pick_min_time(scores, tp, n_gt=4, delta=delta, miss_seconds=miss, n_images=2)
    # seconds when keeping >= each score: 28, 21.5, 15, 16, 12, 13, 14 -> keep down to 0.5
    assert t.method == "min-time" and t.threshold == 0.5
    assert t.expected_seconds == pytest.approx(12 / 2)
    assert t.precision == pytest.approx(3 / 4) and t.recall == pytest.approx(3 / 4)
    # best F1 on the same curve stops earlier
    assert pick_threshold(scores, tp, n_gt=4).threshold >= 0.5
    assert seconds_at(0.8, scores, delta, miss, 2) == pytest.approx(15 / 2)
    assert seconds_at(NEVER, scores, delta, miss, 2) == pytest.approx(28 / 2)


def test_min_time_proposes_nothing_when_proposals_only_cost():
    t = pick_min_time(np.array([0.9, 0.4]), np.array([0, 0], bool), n_gt=2, delta=np.array([1.0, 1.0]),
                      miss_seconds=14.0, n_images=1)
    assert t.threshold == NEVER and t.method == "too-weak" and t.expected_seconds == 14.0
    assert pick_min_time(np.array([]), np.array([], bool), 3, np.array([]), 21.0, 3).method == "fallback"


def test_parse_best_f1_rule():
    classes = ["car", "person"]
    assert parse_threshold("auto", classes).rule == "min-time"
    assert parse_threshold("best-f1", classes).rule == "best-f1"
    req = parse_threshold("best-f1;car=0.6", classes)
    assert req.rule == "best-f1" and req.given == {"car": 0.6} and req.needs_auto
