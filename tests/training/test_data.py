"""Dataset adapter: shapes, training regions, tiles, augmentation, metrics against pycocotools."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch

from labelloop.core.predictions import Predictions
from labelloop.training.data import FILL, SampleDataset, collate, prepare_arrays
from labelloop.training.metrics import coco_detections, coco_ground_truth, coco_metrics, evaluate_predictions
from training.synth import make_sample, make_training_data


@pytest.mark.parametrize("task", ["detect", "segment", "regions"])
def test_items_have_documented_shapes(task: str, tmp_path: Path) -> None:
    data = make_training_data(tmp_path, n_train=4, n_val=0, task=task, size=(80, 120))
    ds = SampleDataset(data.train, task, image_size=64, augment="strong")
    images, targets = collate([ds[i] for i in range(4)])
    for im, t in zip(images, targets, strict=True):
        assert im.dtype == torch.uint8 and im.shape[0] == 3 and max(im.shape[1:]) == 64
        assert t["boxes"].shape[1] == 4 and len(t["boxes"]) == len(t["labels"])
        assert (t["labels"] >= 1).all()  # 0 is background
        if task == "segment":
            assert t["masks"].shape == (len(t["boxes"]), *im.shape[1:])
        if task == "regions":
            assert t["semantic"].shape == im.shape[1:]


def test_training_region_crops_greys_out_and_drops_outside_objects(tmp_path: Path) -> None:
    s = make_sample(tmp_path, 1, size=(100, 100), n_objects=(3, 3), obj_size=(15, 20), seed=3, with_masks=True)
    box = s.boxes[0]
    x0, y0, x1, y1 = (float(v) for v in box)
    triangle = [[x0 - 2, y0 - 2, x1 + 30, y0 - 2, x0 - 2, y1 + 30]]  # contains object 0
    s = type(s)(s.image_id, s.path, s.width, s.height, s.boxes, s.labels, s.masks, triangle)
    from labelloop.core.geometry import fraction_inside, polygons_to_rle, rle_to_mask

    full = rle_to_mask(polygons_to_rle(triangle, 100, 100)).astype(bool)
    expected = [fraction_inside(full, b) >= 0.5 for b in s.boxes]
    assert expected[0] and not all(expected)  # the seed puts another object outside
    image, arrays = prepare_arrays(s, "regions")
    assert image.shape[0] < 100 and (arrays["semantic"] == 255).any() and (image == FILL).all(axis=2).any()
    image, arrays = prepare_arrays(s, "detect")
    assert len(arrays["labels"]) == sum(expected)
    assert arrays["boxes"][0] == pytest.approx(box - np.array([x0 - 2, y0 - 2, x0 - 2, y0 - 2]), abs=1.01)


def test_random_tile_keeps_objects_in_tile_coordinates(tmp_path: Path) -> None:
    s = make_sample(tmp_path, 1, size=(400, 600), n_objects=(4, 6), obj_size=(20, 30))
    image, arrays = prepare_arrays(s, "detect", tile=128, rng=random.Random(0))
    assert image.shape[:2] == (128, 128)
    b = arrays["boxes"]
    assert (b >= 0).all() and (b[:, [0, 2]] <= 128).all() and (b[:, [1, 3]] <= 128).all()


def _random_preds(data, seed: int) -> dict[int, Predictions]:
    rng = np.random.default_rng(seed)
    out = {}
    for s in data.val:
        jitter = rng.normal(0, 3, s.boxes.shape)
        extra = rng.uniform(0, 60, (2, 2))
        boxes = np.concatenate([s.boxes + jitter, np.hstack([extra, extra + 20])])
        out[s.image_id] = Predictions(boxes, rng.uniform(0.05, 1, len(boxes)),
                                      np.concatenate([s.labels, rng.integers(0, 2, 2)]))
    return out


def test_faster_coco_eval_matches_pycocotools(tmp_path: Path) -> None:
    data = make_training_data(tmp_path, n_train=0, n_val=10)
    preds = _random_preds(data, 0)
    gt = coco_ground_truth(data.val, data.classes, with_masks=False)
    dets = coco_detections(preds, with_masks=False)
    fast = coco_metrics(gt, dets, "bbox")
    ref = coco_metrics(gt, dets, "bbox", backend="pycocotools")
    for key in ("map", "map50", "precision", "recall"):
        assert fast[key] == pytest.approx(ref[key], abs=1e-6), key
    assert fast["ap_per_class"] == pytest.approx(ref["ap_per_class"], abs=1e-6)


def test_perfect_predictions_score_one(tmp_path: Path) -> None:
    data = make_training_data(tmp_path, n_train=0, n_val=4, task="segment")
    preds = {s.image_id: Predictions(s.boxes, np.ones(len(s.boxes)), s.labels, s.masks) for s in data.val}
    m = evaluate_predictions(data.val, preds, data.classes, "segment")
    assert m["map"] == pytest.approx(1.0) and m["mask_map"] == pytest.approx(1.0)


def test_pasted_objects_never_hide_an_annotated_object(tmp_path: Path) -> None:
    from labelloop.training.data import PASTE_MAX_COVER, _cover, _cut_objects, paste_objects

    image = np.full((120, 160, 3), 90, np.uint8)
    masks = np.zeros((1, 120, 160), np.uint8)
    masks[0, 40:80, 60:100] = 1
    arrays = {"boxes": np.array([[60, 40, 100, 80]], np.float32), "labels": np.array([1]), "masks": masks}
    donor = np.full((40, 40, 3), 250, np.uint8)
    dmask = np.zeros((1, 40, 40), np.uint8)
    dmask[0, 10:30, 10:30] = 1
    cut = _cut_objects(donor, {"boxes": np.array([[10, 10, 30, 30]], np.float32), "labels": np.array([2]),
                               "masks": dmask})
    for seed in range(20):
        out, got = paste_objects(image, arrays, cut * 3, random.Random(seed))
        assert len(got["boxes"]) == len(got["labels"]) == len(got["masks"]) >= 2
        assert (got["labels"][1:] == 2).all()
        assert (_cover(got["boxes"][:1], got["boxes"][1]) <= PASTE_MAX_COVER).all()
        for box, mask in zip(got["boxes"][1:], got["masks"][1:], strict=True):  # the box is the pasted mask's
            ys, xs = np.nonzero(mask)
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == pytest.approx(box)
            assert (out[mask > 0] == 250).all()
        # the original object's mask loses exactly the pixels a paste covers
        assert got["masks"][0].sum() == masks[0].sum() - (masks[0] & (got["masks"][1:].max(0) > 0)).sum()
        assert (image == 90).all()  # the input is not modified
    # a mask with no pixels (a degenerate polygon) has nothing to paste, and pasting it changes nothing
    empty = _cut_objects(donor, {"boxes": np.array([[10, 10, 30, 30]], np.float32), "labels": np.array([2]),
                                 "masks": np.zeros((1, 40, 40), np.uint8)})
    out, got = paste_objects(image, arrays, empty, random.Random(0))
    assert len(got["boxes"]) == 1 and (out == image).all()


def test_copy_paste_draws_classes_evenly(tmp_path: Path) -> None:
    from labelloop.training.data import ObjectBank

    common = [make_sample(tmp_path, i, n_classes=1, n_objects=(3, 3), obj_size=(12, 16)) for i in range(6)]
    rare = make_sample(tmp_path, 50, n_classes=1, n_objects=(1, 1), obj_size=(12, 16))
    rare = type(rare)(rare.image_id, rare.path, rare.width, rare.height, rare.boxes, rare.labels + 1)
    bank = ObjectBank([*common, rare], "detect")
    labels = [lab for _, _, lab in bank.draw(400, random.Random(0))]
    assert 0.4 < labels.count(2) / len(labels) < 0.6  # 1 object of 19, drawn half of the time
    ds = SampleDataset([*common, rare], "detect", image_size=96, augment="none", copy_paste=1.0)
    counts = [len(ds[i][1]["boxes"]) for i in range(6)]
    assert sum(counts) > 6 * 3  # every item gained pasted objects


def _mosaic_parts(n: int = 4) -> list[tuple[np.ndarray, dict]]:
    """Four 80x120 images, image k of grey level 40 + 50k with one object of label k + 1 (a full-box mask)."""
    parts = []
    for k in range(n):
        masks = np.zeros((1, 80, 120), np.uint8)
        x0, y0 = 10 + 20 * k, 8 + 10 * k
        masks[0, y0 : y0 + 30, x0 : x0 + 40] = 1
        parts.append((np.full((80, 120, 3), 40 + 50 * k, np.uint8),
                      {"boxes": np.array([[x0, y0, x0 + 40, y0 + 30]], np.float32), "labels": np.array([k + 1]),
                       "masks": masks}))
    return parts


def test_mosaic_keeps_each_object_on_its_own_image_at_its_scale() -> None:
    from labelloop.training.data import MOSAIC_MIN_KEEP, mosaic

    parts = _mosaic_parts()
    seen: set[int] = set()
    for seed in range(40):
        canvas, got = mosaic(parts, random.Random(seed))
        assert canvas.shape == (80, 120, 3)
        assert len(got["boxes"]) == len(got["labels"]) == len(got["masks"]) <= 4
        for box, label, mask in zip(got["boxes"], got["labels"], got["masks"], strict=True):
            x0, y0, x1, y1 = (int(v) for v in box)
            assert 0 <= x0 < x1 <= 120 and 0 <= y0 < y1 <= 80
            # the pixels under the box are its own image's, and the box is no bigger than it was
            assert (canvas[y0:y1, x0:x1] == 40 + 50 * (label - 1)).all()
            assert x1 - x0 <= 40 and y1 - y0 <= 30 and (x1 - x0) * (y1 - y0) >= MOSAIC_MIN_KEEP * 40 * 30
            ys, xs = np.nonzero(mask)  # the mask moved with the box
            assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == [x0, y0, x1, y1]
            seen.add(int(label))
        assert all((p[0] == 40 + 50 * k).all() for k, p in enumerate(parts))  # the inputs are not modified
    assert seen == {1, 2, 3, 4}  # every image's object shows up in some mosaic


def test_mosaic_items_have_documented_shapes(tmp_path: Path) -> None:
    data = make_training_data(tmp_path, n_train=4, n_val=0, task="segment", size=(80, 120))
    ds = SampleDataset(data.train, "segment", image_size=64, augment="none", mosaic=1.0)
    for i in range(4):
        image, target = ds[i]
        assert max(image.shape[1:]) == 64 and target["masks"].shape == (len(target["boxes"]), *image.shape[1:])
    regions = SampleDataset(make_training_data(tmp_path / "r", n_train=2, n_val=0, task="regions").train,
                            "regions", image_size=64, mosaic=1.0)
    assert regions.mosaic == 0.0  # a semantic map is not cut into cells


def test_repeat_factors_favour_images_with_a_rare_class(tmp_path: Path) -> None:
    from labelloop.training.data import repeat_factors

    base = make_sample(tmp_path, 1, n_classes=1, n_objects=(1, 1))
    def with_labels(labels: list[int]) -> object:
        return type(base)(base.image_id, base.path, base.width, base.height,
                          np.repeat(base.boxes[:1], len(labels), 0), np.array(labels, np.int64))
    samples = [with_labels([0]) for _ in range(15)] + [with_labels([0, 1])] + [with_labels([])]
    weights = repeat_factors(samples)  # class 0 in 16 images, class 1 in 1: sqrt(16) = 4 (the cap)
    assert weights[:15] == [1.0] * 15 and weights[15] == pytest.approx(4.0) and weights[16] == 1.0
    assert repeat_factors(samples, cap=2.0)[15] == 2.0


def test_an_area_limits_what_is_taught_and_what_is_scored(tmp_path: Path) -> None:
    from dataclasses import replace

    from labelloop.core.geometry import mask_to_rle

    s = make_sample(tmp_path, 2, size=(100, 100), n_objects=(4, 4), obj_size=(12, 14), seed=5)
    area = np.zeros((100, 100), dtype=bool)
    x0, y0, x1, y1 = (int(v) for v in s.boxes[0])
    area[max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = True  # only object 0 lies inside
    limited = replace(s, area=mask_to_rle(area))
    perfect = {s.image_id: Predictions(s.boxes[:1].copy(), np.array([0.9]), s.labels[:1].copy())}
    # the objects outside the area are not misses, and a detection there would not be a false positive
    assert evaluate_predictions([limited], perfect, ["a", "b"], "detect")["map50"] == pytest.approx(1.0)
    assert evaluate_predictions([s], perfect, ["a", "b"], "detect")["map50"] < 1.0
    # an image outside every region of its parent teaches nothing: grey, no objects
    empty = replace(s, area=mask_to_rle(np.zeros((100, 100), dtype=bool)))
    image, arrays = prepare_arrays(empty, "detect")
    assert len(arrays["labels"]) == 0 and (image == FILL).all()
