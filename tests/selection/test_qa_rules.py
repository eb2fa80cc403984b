"""Label-error rules on planted cases (pure, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.core.predictions import Predictions, Truth
from labelloop.selection.qa import duplicate_issues, image_label_issues, size_spread_issues

CLASSES = ["cat", "dog"]


def test_wrong_class_missing_and_bad_boxes():
    gt = np.array([[0, 0, 40, 40], [100, 100, 140, 140], [200, 0, 240, 40]], dtype=float)
    gl = np.array([0, 0, 1])
    preds = np.array([[0, 0, 40, 40],        # agrees
                      [101, 100, 140, 141],  # same place, other class -> wrong_class on annotation 11
                      [300, 300, 340, 340],  # nothing labelled -> missing_box
                      [215, 10, 255, 50]],   # dog box overlapping IoU ~0.4 -> bad_box on annotation 12
                     dtype=float)
    truth = Truth(gt, gl, (10, 11, 12))
    issues = image_label_issues(7, truth, Predictions(preds, np.array([0.9, 0.95, 0.8, 0.9]), np.array([0, 1, 0, 1])),
                                CLASSES)
    kinds = {(i.kind, i.annotation_id) for i in issues}
    assert kinds == {("wrong_class", 11), ("missing_box", None), ("bad_box", 12)}
    wrong = next(i for i in issues if i.kind == "wrong_class")
    assert wrong.score == pytest.approx(0.95) and wrong.predicted_label == "dog" and "labelled cat" in wrong.message
    assert next(i for i in issues if i.kind == "bad_box").score < 0.9
    # unconfident predictions are ignored
    assert image_label_issues(7, truth, Predictions(preds, np.full(4, 0.2), np.array([0, 1, 0, 1])), CLASSES) == []


def test_duplicates_need_same_class():
    boxes = np.array([[0, 0, 50, 50], [1, 1, 50, 50], [0, 0, 50, 51]], dtype=float)
    found = duplicate_issues(3, Truth(boxes, np.array([0, 0, 1]), (1, 2, 3)), CLASSES)
    assert [(i.kind, i.annotation_id) for i in found] == [("duplicate", 2)]


def test_size_spread():
    rng = np.random.default_rng(0)
    narrow = (rng.uniform(30, 40, 50) ** 2).tolist()
    wide = np.r_[rng.uniform(4, 6, 25), rng.uniform(200, 300, 25)] ** 2
    found = size_spread_issues({"cat": narrow, "dog": wide.tolist(), "few": [1.0, 1e6]})
    assert [i.label for i in found] == ["dog"] and 0 < found[0].score <= 1
