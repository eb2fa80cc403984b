"""Test-time augmentation: mirroring predictions back and fusing the views (hand-computable)."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from labelloop.core.predictions import Predictions
from labelloop.inference.predictions import encode_masks, fuse_views, mirror


def test_mirror_maps_boxes_and_masks_back() -> None:
    m = np.zeros((1, 20, 50), bool)
    m[0, 5:10, 2:8] = True
    p = Predictions(np.array([[2, 5, 8, 10]]), np.array([0.5]), np.array([1]), encode_masks(m))
    back = mirror(p, 50)
    assert back.boxes.tolist() == [[42, 5, 48, 10]]
    assert mask_utils.decode(back.masks[0])[5:10, 42:48].all() and mask_utils.decode(back.masks[0]).sum() == 30
    assert mirror(back, 50).boxes.tolist() == p.boxes.tolist()


def test_fusion_averages_agreeing_boxes_by_score_and_halves_lone_ones() -> None:
    a = Predictions(np.array([[10, 10, 20, 20], [50, 50, 60, 60]]), np.array([0.8, 0.6]), np.array([0, 0]))
    b = Predictions(np.array([[12, 10, 22, 20], [51, 50, 61, 60]]), np.array([0.4, 0.3]), np.array([0, 1]))
    fused = fuse_views([a, b])
    # the first pair agrees (IoU 0.67): x0 = (10 * .8 + 12 * .4) / 1.2, score (0.8 + 0.4) / 2
    assert fused.boxes[0] == pytest.approx([10 + 2 / 3, 10, 20 + 2 / 3, 20], abs=1e-4)
    assert fused.scores.tolist() == pytest.approx([0.6, 0.3, 0.15])
    # the second pair overlaps but is of two classes: two objects, each seen by one view
    assert sorted(fused.labels.tolist()) == [0, 0, 1] and len(fused) == 3


def test_fusion_never_merges_two_boxes_of_one_view() -> None:
    a = Predictions(np.array([[10, 10, 20, 20], [11, 10, 21, 20]]), np.array([0.9, 0.8]), np.array([0, 0]))
    b = Predictions(np.array([[10, 10, 20, 20]]), np.array([0.7]), np.array([0]))
    fused = fuse_views([a, b])
    assert len(fused) == 2 and fused.scores.tolist() == pytest.approx([0.8, 0.4])
    assert len(fuse_views([Predictions.empty(), Predictions.empty()])) == 0
