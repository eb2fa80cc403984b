"""LabelMe JSON import: shapes, groups, image paths, bad input; labelme_examples through CVAT."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from factories import assert_same_dataset
from helpers import shared_dataset
from labelloop.core.geometry import rle_to_mask
from labelloop.errors import FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format

LABELME = get_format("labelme")


def _shape(label: str, points: list[list[float]], kind: str = "polygon", **extra: Any) -> dict[str, Any]:
    return {"label": label, "points": points, "shape_type": kind, "group_id": None, "flags": {}, **extra}


def _doc(tmp_path: Path, shapes: list[dict[str, Any]], image_path: str = "a.jpg", name: str = "a.json",
         folder: str = "ann") -> Path:
    root = tmp_path / folder
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    path.write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": image_path,
                                "imageData": None, "imageHeight": 60, "imageWidth": 80}), encoding="utf-8")
    return path


def test_reads_shapes_groups_and_masks(tmp_path: Path) -> None:
    crop = np.zeros((4, 6), dtype=np.uint8)
    crop[1:3, 1:5] = 255
    buf = io.BytesIO()
    Image.fromarray(crop).save(buf, format="PNG")
    shapes = [_shape("cat", [[30, 40], [10, 5]], "rectangle"),
              _shape("dog", [[0, 0], [10, 0], [10, 10]], group_id=1),
              _shape("dog", [[20, 20], [30, 20], [30, 30]], group_id=1),
              _shape("dog", [[50, 50], [60, 50], [60, 55]]),
              _shape("ball", [[40, 30], [45, 30]], "circle"),
              _shape("cat", [[10, 20], [15, 23]], "mask", mask=base64.b64encode(buf.getvalue()).decode()),
              _shape("__ignore__", [[0, 50], [5, 50], [5, 55]]),
              _shape("cat", [[1, 1], [2, 2]], "line")]
    path = _doc(tmp_path, shapes)
    ds = LABELME.read(path.parent, ReadOptions())
    assert detect_format(path.parent).name == "labelme" and detect_format(path).name == "labelme"
    image = ds.images[0]
    assert (image.file_name, image.width, image.height) == ("a.jpg", 80, 60)
    rect, grouped, single, ball, mask, ignore = image.annotations
    assert rect.bbox == (10, 5, 30, 40)
    assert len(grouped.polygons or []) == 2 and grouped.bbox == (0, 0, 30, 30)
    assert len(single.polygons or []) == 1
    assert ball.bbox == pytest.approx((35, 25, 45, 35))
    assert mask.bbox == (11, 21, 15, 23) and int(rle_to_mask(mask.rle).sum()) == 8
    assert ignore.iscrowd and ignore.label == "__ignore__"
    assert any("line shapes are not objects" in s for s in ds.skipped)


def test_labels_txt_sets_class_order_and_sibling_image_folder(tmp_path: Path) -> None:
    (tmp_path / "labels.txt").write_text("__ignore__\n_background_\nzebra\ncat\n")
    (tmp_path / "images").mkdir()
    Image.new("RGB", (80, 60)).save(tmp_path / "images/a.jpg")
    _doc(tmp_path, [_shape("cat", [[1, 1], [5, 1], [5, 5]])], image_path="../images/a.jpg")
    ds = LABELME.read(tmp_path / "ann", ReadOptions())
    assert ds.labels == ["zebra", "cat"]
    assert ds.images[0].file_name == "images/a.jpg" and ds.images[0].path == tmp_path / "images/a.jpg"


@pytest.mark.parametrize(("shapes", "image_path", "reason"), [
    ([], "/etc/passwd", "unsafe image path"),
    ([], "../../../../etc/passwd", "leaves the dataset folder"),
    ([_shape("cat", [[1, 1], [1, 9]], "rectangle")], "a.jpg", "zero or negative area"),
    ([_shape("cat", [[1, 1], [2, 2]])], "a.jpg", "expected a polygon of >= 3 points"),
    ([_shape("cat", [[1, 1, 3]])], "a.jpg", "expected 'points' as a list of [x, y] pairs"),
])
def test_bad_files_name_file_and_record_or_are_skipped(tmp_path: Path, shapes: list[Any], image_path: str,
                                                       reason: str) -> None:
    bad = _doc(tmp_path, shapes, image_path, name="bad.json")
    _doc(tmp_path, [_shape("cat", [[1, 1], [5, 1], [5, 5]])], "ok.jpg", name="ok.json")
    with pytest.raises(FormatError) as info:
        LABELME.read(tmp_path / "ann", ReadOptions())
    assert reason in str(info.value) and str(bad) in str(info.value) and info.value.record
    ds = LABELME.read(tmp_path / "ann", ReadOptions(skip_invalid=True))
    assert len(ds.skipped) == 1 and reason in ds.skipped[0] and "ok.jpg" in [i.file_name for i in ds.images]


def test_truncated_json_is_a_format_error(tmp_path: Path) -> None:
    path = _doc(tmp_path, [_shape("cat", [[1, 1], [5, 1], [5, 5]])])
    path.write_text(path.read_text()[:40])
    with pytest.raises(FormatError, match="invalid JSON"):
        LABELME.read(path, ReadOptions())


@pytest.mark.datasets
@pytest.mark.parametrize(("layout", "kind", "objects"), [("instance_segmentation", "polygon", 14),
                                                         ("bbox_detection", "box", 9)])
def test_labelme_examples_read_and_round_trip_through_cvat(tmp_path: Path, layout: str, kind: str,
                                                           objects: int) -> None:
    root = shared_dataset("labelme_examples") / layout
    assert detect_format(root).name == "labelme"
    ds = LABELME.read(root, ReadOptions())
    assert len(ds.images) == 3 and all(i.path is not None for i in ds.images)
    assert sum(len(i.annotations) for i in ds.images) == objects
    assert {a.kind for i in ds.images for a in i.annotations} == {kind}
    assert ds.labels[:3] == ["aeroplane", "bicycle", "bird"]
    cvat = get_format("cvat")
    cvat.write(ds, tmp_path / "cvat", WriteOptions(images="link"))
    back = cvat.read(tmp_path / "cvat", ReadOptions())
    assert_same_dataset(ds, back, mask_iou=0.999)
    assert back.labels == ds.labels
    assert [a.iscrowd for i in back.images for a in i.annotations] == \
        [a.iscrowd for i in ds.images for a in i.annotations]
