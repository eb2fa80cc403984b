"""COCO -> CVAT -> COCO keeps boxes, polygons, masks, crowd flags, scores and sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import assert_same_dataset, make_dataset
from helpers import shared_dataset
from labelloop.formats import ReadOptions, WriteOptions, get_format

COCO, CVAT = get_format("coco"), get_format("cvat")


def test_coco_to_cvat_to_coco(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"), with_proposals=True, n_images=8)
    COCO.write(ds, tmp_path / "coco", WriteOptions())
    coco = COCO.read(tmp_path / "coco", ReadOptions())
    CVAT.write(coco, tmp_path / "cvat", WriteOptions())
    via_cvat = CVAT.read(tmp_path / "cvat", ReadOptions())
    COCO.write(via_cvat, tmp_path / "coco2", WriteOptions())
    back = COCO.read(tmp_path / "coco2", ReadOptions())
    assert_same_dataset(coco, back)
    assert_same_dataset(ds, back)
    assert back.labels == ds.labels
    kinds = {a.kind for i in back.images for a in i.annotations}
    assert kinds == {"box", "polygon", "mask"}
    sources = {(a.source, a.review_state) for i in back.images for a in i.annotations if a.score is not None}
    assert sources == {("model:1", "proposed")}


@pytest.mark.datasets
def test_coco128_through_cvat(tmp_path: Path) -> None:
    coco = COCO.read(shared_dataset("coco128") / "annotations", ReadOptions())
    CVAT.write(coco, tmp_path / "cvat", WriteOptions(images="none"))
    back = CVAT.read(tmp_path / "cvat", ReadOptions())
    # polygon boxes are recomputed from the rings (COCO's stored bbox is rounded), so compare shapes by IoU
    assert_same_dataset(coco, back, check_bbox=False, mask_iou=0.999)
    assert sum(a.iscrowd for i in back.images for a in i.annotations) == 10
    assert back.labels == coco.labels
