"""Review seconds per candidate (the rule simulate follows) and the click-to-box pick rule."""

from __future__ import annotations

import numpy as np
import pytest

from labelloop.core.predictions import Predictions, Truth
from labelloop.inference.click import click_candidate
from labelloop.selection.effort import CostModel
from labelloop.selection.review_cost import clickable, review_deltas

C = CostModel()


def test_deltas_follow_the_reviewer_rule():
    gt = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]], float)
    gl = np.array([0, 0, 1, 0])
    boxes = np.array([[0, 0, 10, 10],        # exact, same class: accept
                      [20, 0, 30, 10],       # exact, other class: relabel
                      [40, 0, 47, 10],       # IoU .7 exactly: accept (class 1)
                      [60, 0, 66, 10],       # IoU .6: fix
                      [0, 0, 10, 10],        # duplicate of the first: delete
                      [80, 80, 90, 90]], float)  # nothing there: delete
    labels = np.array([0, 1, 1, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    r = review_deltas(Predictions(boxes, scores, labels), Truth(gt, gl), C, use_click=False)
    assert r.miss.tolist() == [C.draw] * 4
    assert r.delta.tolist() == pytest.approx([C.accept - C.draw, C.class_change - C.draw, C.accept - C.draw,
                                              C.fix - C.draw, C.delete, C.delete])


def test_click_rule_prefers_centred_boxes_and_skips_annotated_ones():
    boxes = np.array([[0, 0, 100, 100], [40, 40, 60, 60], [42, 42, 58, 58]], float)
    scores = np.array([0.9, 0.5, 0.3])
    # the big box scores higher, but the click is at the small box's centre, near the big one's centre too
    assert click_candidate(boxes, scores, 50, 50) == 0  # 0.9 * 1.0 beats 0.5 * 1.0
    assert click_candidate(boxes, scores, 55, 45) == 0  # still inside the big box's centre region
    assert click_candidate(boxes, scores, 41, 41) == 0
    assert click_candidate(boxes[1:], scores[1:], 50, 50) == 0
    # already annotated: the next candidate is picked, or none
    assert click_candidate(boxes, scores, 50, 50, existing=np.array([[0, 0, 100, 100]])) == 1
    assert click_candidate(boxes, scores, 200, 200) is None
    assert click_candidate(np.zeros((0, 4)), np.zeros(0), 1, 1) is None
    # centrality: a box merely containing the point at its edge loses to one centred on it
    off = np.array([[0, 0, 20, 20], [15, 15, 25, 25]], float)
    assert click_candidate(off, np.array([0.6, 0.5]), 19.5, 19.5) == 1


def test_misses_are_clicks_only_when_the_candidate_fits():
    gt = np.array([[0, 0, 10, 10], [50, 50, 60, 60]], float)
    cands = np.array([[0, 0, 10, 11], [48, 48, 70, 70]], float)  # fits the first; too loose for the second
    assert clickable(cands, np.array([0.1, 0.1]), gt).tolist() == [True, False]
    r = review_deltas(Predictions(cands, np.array([0.1, 0.1]), np.array([0, 0])), Truth(gt, np.array([0, 0])), C)
    assert r.miss.tolist() == [C.click, C.draw]
