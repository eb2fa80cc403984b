"""Review curves: the expected review seconds per image at every class's time-optimal threshold."""

from __future__ import annotations

import numpy as np

from labelloop.core.predictions import Predictions, Truth
from labelloop.selection.effort import CostModel
from labelloop.selection.review_curves import ReviewCurves

OBJECT = (20.0, 20.0, 36.0, 36.0)


def _preds(boxes: list[tuple[float, ...]], scores: list[float], labels: list[int]) -> Predictions:
    return Predictions(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32), np.array(labels))


def test_expected_seconds_follow_the_cost_model_per_image() -> None:
    truth = Truth(np.array([OBJECT, (50.0, 50.0, 60.0, 60.0)]), np.array([0, 1]))
    curves = ReviewCurves(2)
    # class 0 found exactly (accept 0.5 s); class 1 has nothing near it (draw 7 s); a wrong class-0 box
    # below the right one's score is left out by the threshold
    curves.add(_preds([OBJECT, (0.0, 0.0, 8.0, 8.0)], [0.9, 0.4], [0, 0]), truth)
    assert curves.n_images == 1 and [c.n_gt for c in curves.curves] == [1, 1]
    t0 = curves.min_time(0)
    assert t0.method == "min-time" and t0.threshold > 0.4 and t0.expected_seconds == 0.5
    assert curves.min_time(1).expected_seconds == 7.0
    assert curves.expected_seconds() == 2.0 + 0.5 + 7.0  # inspecting the image, accepting, drawing


def test_a_missed_object_with_a_candidate_at_its_centre_costs_a_click() -> None:
    truth = Truth(np.array([OBJECT]), np.array([0]))
    wrong = [(0.0, 40.0, 10.0, 50.0)] * 2
    curves = ReviewCurves(1, CostModel(click=2.0))
    # two wrong boxes score above the right one: proposing nothing and clicking the object is cheapest
    curves.add(_preds([OBJECT, *wrong], [0.9, 0.95, 0.95], [0, 0, 0]), truth)
    assert curves.min_time(0).method == "too-weak" and curves.expected_seconds() == 2.0 + 2.0
    dearer_clicks = ReviewCurves(1, CostModel(click=5.0))
    dearer_clicks.add(_preds([OBJECT, *wrong], [0.9, 0.95, 0.95], [0, 0, 0]), truth)
    assert dearer_clicks.expected_seconds() == 2.0 + 0.5 + 1.0 + 1.0  # now accepting and deleting two wins


def test_proposals_of_a_class_without_validation_objects_cost_their_deletes() -> None:
    curves = ReviewCurves(2)
    curves.add(_preds([OBJECT, (0.0, 0.0, 8.0, 8.0)], [0.9, 0.8], [0, 1]), Truth(np.array([OBJECT]), np.array([0])))
    unseen = curves.min_time(1)
    assert unseen.method == "fallback" and unseen.expected_seconds == 1.0  # the 0.8 box is above 0.5: deleted
    assert curves.expected_seconds() == 2.0 + 0.5 + 1.0
