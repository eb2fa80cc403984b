import numpy as np
import pytest

from factories import random_boxes
from labelloop.core.geometry import (
    box_iou,
    cvat_rle_to_mask,
    mask_to_cvat_rle,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_rle,
    rle_bbox_xyxy,
    rle_iou,
    rle_to_mask,
    xywh_to_xyxy,
    xyxy_to_xywh,
)


def test_xywh_round_trip_is_exact_and_does_not_mutate():
    boxes = random_boxes(50, 640, 480, seed=1)
    before = boxes.copy()
    assert np.allclose(xywh_to_xyxy(xyxy_to_xywh(boxes)), boxes, atol=1e-9)
    assert np.array_equal(boxes, before)


def test_box_iou_is_symmetric_and_one_on_diagonal():
    a = random_boxes(20, 100, 100, seed=2)
    b = random_boxes(15, 100, 100, seed=3)
    assert np.allclose(box_iou(a, b), box_iou(b, a).T)
    assert np.allclose(np.diag(box_iou(a, a)), 1.0)
    assert ((box_iou(a, b) >= 0) & (box_iou(a, b) <= 1)).all()


def test_box_iou_matches_torchvision_if_installed():
    torch = pytest.importorskip("torch")
    from torchvision.ops import box_iou as tv_iou

    a, b = random_boxes(10, 50, 50, seed=4), random_boxes(12, 50, 50, seed=5)
    assert np.allclose(box_iou(a, b), tv_iou(torch.tensor(a), torch.tensor(b)).numpy(), atol=1e-6)


@pytest.mark.parametrize("seed", range(5))
def test_mask_to_polygons_reproduces_hole_free_masks(seed):
    rng = np.random.default_rng(seed)
    mask = np.zeros((40, 50), dtype=np.uint8)
    for _ in range(3):
        y, x = rng.integers(0, 30), rng.integers(0, 40)
        mask[y:y + rng.integers(2, 10), x:x + rng.integers(2, 10)] = 1
    polys = mask_to_polygons(mask)
    again = rle_to_mask(polygons_to_rle(polys, 40, 50))
    assert np.array_equal(again, mask)


def test_rle_round_trip_and_bbox():
    mask = np.zeros((30, 20), dtype=np.uint8)
    mask[5:12, 3:9] = 1
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str)
    assert np.array_equal(rle_to_mask(rle), mask)
    assert rle_bbox_xyxy(rle) == (3.0, 5.0, 9.0, 12.0)
    assert rle_iou(rle, rle) == pytest.approx(1.0)


def test_cvat_rle_round_trip():
    mask = np.zeros((30, 40), dtype=np.uint8)
    mask[4:10, 7:20] = 1
    mask[6, 10] = 0
    runs = mask_to_cvat_rle(mask, 7, 4, 13, 6)
    assert runs[0] == 0  # CVAT RLE starts with a (possibly empty) run of background
    assert np.array_equal(cvat_rle_to_mask(runs, 7, 4, 13, 6, 30, 40), mask)


def test_rings_and_masks_move_and_scale_with_their_box() -> None:
    from labelloop.core.geometry import move_polygons, move_rle

    rings = [[10, 10, 20, 10, 20, 20], [30, 30, 40, 30, 40, 40]]
    assert move_polygons(rings, (10, 10, 40, 40), (15, 12, 45, 42)) == [[15, 12, 25, 12, 25, 22],
                                                                          [35, 32, 45, 32, 45, 42]]
    assert move_polygons(rings, (10, 10, 40, 40), (10, 10, 70, 40))[1] == [50, 30, 70, 30, 70, 40]  # 2x wide
    mask = np.zeros((50, 60), np.uint8)
    mask[10:20, 10:30] = 1
    moved = rle_to_mask(move_rle(mask_to_rle(mask), (10, 10, 30, 20), (25, 30, 65, 40)))  # right, down, 2x wide
    assert moved.shape == (50, 60) and moved[30:40, 25:60].all() and moved.sum() == 10 * 35  # clipped at x = 60


def test_a_mask_dragged_by_fractions_of_a_pixel_keeps_its_size_and_its_box() -> None:
    from labelloop.core.geometry import move_rle, rle_bbox_xyxy, snap_move

    mask = np.zeros((60, 80), np.uint8)
    mask[10:21, 10:21] = 1
    rle, box = mask_to_rle(mask), (10.0, 10.0, 21.0, 21.0)
    for _ in range(6):  # six drags of 1.37 px, as a browser reports them, each snapped as the service does
        new = snap_move(box, (box[0] + 1.37, box[1] + 1.37, box[2] + 1.37, box[3] + 1.37))
        rle, box = move_rle(rle, box, new), new
    moved = rle_to_mask(rle)
    assert moved.sum() == 121 and rle_bbox_xyxy(rle) == pytest.approx(box)  # the box still hugs its mask
    assert box == (16.0, 16.0, 27.0, 27.0)


def test_rle_checks_agree_with_pycocotools() -> None:
    """``check_rle`` accepts every mask pycocotools encodes and refuses runs that do not cover the image."""
    import numpy as np
    import pytest
    from pycocotools import mask as mask_utils

    from labelloop.core.geometry import check_mask_size, check_polygons, check_rle, mask_to_rle, rle_counts

    rng = np.random.default_rng(0)
    for h, w in ((1, 1), (7, 13), (40, 50), (120, 90)):
        m = (rng.random((h, w)) > rng.random()).astype(np.uint8)
        rle = mask_to_rle(m)
        check_rle(rle, h, w)
        runs = rle_counts(rle["counts"])  # the same runs pycocotools reads from the string
        assert sum(runs) == h * w
        assert np.array_equal(mask_utils.decode(mask_utils.frPyObjects({"size": [h, w], "counts": runs}, h, w)), m)
    with pytest.raises(ValueError, match="outside the COCO RLE code"):
        check_rle({"size": [4, 4], "counts": "garbage!!"}, 4, 4)
    with pytest.raises(ValueError, match="cover 15 pixels"):
        check_rle({"size": [4, 4], "counts": [10, 5]}, 4, 4)
    with pytest.raises(ValueError, match="does not match the image"):
        check_rle(mask_to_rle(np.ones((4, 5), np.uint8)), 5, 4)
    with pytest.raises(ValueError, match="over the limit"):
        check_mask_size(60000, 60000, max_pixels=10**8)
    with pytest.raises(ValueError, match="positive integers"):
        check_mask_size(-1, 5, max_pixels=10**8)
    check_polygons([[1, 1, 9, 1, 9, 7]], 10, 8)
    with pytest.raises(ValueError, match="encloses no area"):
        check_polygons([[1, 1, 3, 3, 5, 5]], 10, 8)
    with pytest.raises(ValueError, match="reaches outside"):
        check_polygons([[1, 1, 90, 1, 9, 7]], 10, 8)


def test_mask_to_polygons_outlines_each_of_many_spots_and_a_big_region():
    """Hundreds of components (each found once, in raster order) and a region far bigger than its
    outline: the work follows the outline, and the rings still rebuild the mask exactly."""
    mask = np.zeros((300, 400), dtype=np.uint8)
    spots = [(y, x) for y in range(5, 295, 12) for x in range(5, 395, 12)]
    for y, x in spots:
        mask[y:y + 4, x:x + 3] = 1
    mask[0:2, 0:2] = 1
    mask[2:4, 2:4] = 1  # touches the square above at one corner: one ring through that corner twice
    polys = mask_to_polygons(mask)
    assert len(polys) == len(spots) + 1
    assert polys[0][:2] == [0.0, 0.0] and polys[0].count(2.0) >= 4
    assert np.array_equal(rle_to_mask(polygons_to_rle(polys, 300, 400)), mask)
    yy, xx = np.mgrid[:1200, :1200]
    disc = ((yy - 600) ** 2 + (xx - 600) ** 2 < 550**2).astype(np.uint8)
    (ring,) = mask_to_polygons(disc)
    assert np.array_equal(rle_to_mask(polygons_to_rle([ring], 1200, 1200)), disc)


def test_cvat_mask_runs_start_with_zeros_and_round_trip():
    mask = np.zeros((6, 7), dtype=np.uint8)
    mask[1:3, 2:5] = 1
    assert mask_to_cvat_rle(mask, 2, 1, 3, 2) == [0, 6]  # the crop is all ones: an empty run of zeros first
    runs = mask_to_cvat_rle(mask, 0, 0, 7, 6)
    assert runs[:2] == [9, 3] and sum(runs) == 42
    assert np.array_equal(cvat_rle_to_mask(runs, 0, 0, 7, 6, 6, 7), mask)
    assert mask_to_cvat_rle(mask, 0, 0, 0, 0) == [0]
