"""Matching, uncertainty and mirror disagreement: invariants on generated boxes."""

from __future__ import annotations

import numpy as np

from factories import random_boxes
from labelloop.core.predictions import Predictions, Truth
from labelloop.selection.matching import greedy_pairs, match_detections
from labelloop.selection.uncertainty import (
    binary_entropy,
    class_ambiguity,
    flip_boxes_xyxy,
    flip_disagreement,
    score_uncertainty,
)


def test_match_detections_is_one_to_one_per_class():
    gt = random_boxes(5, 200, 100, seed=1)
    labels = np.array([0, 1, 0, 1, 2])
    preds = np.concatenate([gt, gt[:2]])  # two duplicates
    tp = match_detections(Predictions(preds, np.linspace(1, 0.5, 7), np.r_[labels, labels[:2]]), Truth(gt, labels))
    assert tp.tolist() == [True] * 5 + [False, False]
    wrong = Predictions(gt, np.ones(5), (labels + 1) % 3)
    assert not match_detections(wrong, Truth(gt, labels)).any()  # wrong classes


def test_greedy_pairs_takes_best_first():
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert greedy_pairs(iou, 0.5) == [(0, 0, 0.9)]
    assert greedy_pairs(np.zeros((0, 3)), 0.5) == []


def test_entropy_and_uncertainty():
    assert binary_entropy(np.array([0.5]))[0] == 1.0
    assert binary_entropy(np.array([0.0, 1.0])).max() < 1e-6
    assert score_uncertainty(np.array([])) == 0.0
    one, five = score_uncertainty(np.array([0.5])), score_uncertainty(np.full(5, 0.5))
    assert 0 < one < five < 1
    assert score_uncertainty(np.full(5, 0.99)) < one


def test_flip_disagreement_bounds():
    boxes = random_boxes(4, 128, 96, seed=3)
    scores, labels = np.array([0.9, 0.8, 0.7, 0.6]), np.array([0, 1, 0, 1])
    mirrored = flip_boxes_xyxy(boxes, 128)
    assert np.allclose(flip_boxes_xyxy(mirrored, 128), boxes)  # an involution
    seen = Predictions(boxes, scores, labels)
    assert flip_disagreement(seen, Predictions(mirrored, scores, labels), 128) < 1e-6  # float32 boxes
    assert flip_disagreement(seen, Predictions.empty(), 128) == 1.0
    partly = flip_disagreement(seen, Predictions(mirrored[:2], scores[:2], labels[:2]), 128)
    assert 0 < partly < 1


def test_class_ambiguity():
    box = np.array([[10, 10, 50, 50], [11, 10, 50, 51]], dtype=float)
    assert class_ambiguity(Predictions(box, np.array([0.6, 0.6]), np.array([0, 1]))) == 1.0
    assert class_ambiguity(Predictions(box, np.array([0.9, 0.3]), np.array([0, 1]))) < 0.5
    assert class_ambiguity(Predictions(box, np.array([0.6, 0.6]), np.array([1, 1]))) == 0.0
