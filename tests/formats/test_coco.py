"""COCO instances JSON: lossless round trips (boxes, polygons, RLE, crowd), proposals, bad input, shared data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from factories import assert_same_dataset, make_dataset
from helpers import shared_dataset
from labelloop.core.geometry import rle_to_mask
from labelloop.errors import FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format

COCO = get_format("coco")


def _doc(annotations: list[dict[str, Any]]) -> dict[str, Any]:
    return {"images": [{"id": 7, "file_name": "a.jpg", "width": 50, "height": 40}],
            "categories": [{"id": 3, "name": "cat"}, {"id": 9, "name": "dog"}],
            "annotations": annotations}


def _write(tmp_path: Path, doc: dict[str, Any]) -> Path:
    (tmp_path / "annotations").mkdir(parents=True, exist_ok=True)
    path = tmp_path / "annotations" / "instances.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def test_round_trip_keeps_boxes_polygons_masks_scores_and_sources(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"), with_proposals=True)
    COCO.write(ds, tmp_path / "out", WriteOptions())
    assert detect_format(tmp_path / "out").name == "coco"
    back = COCO.read(tmp_path / "out", ReadOptions())
    assert_same_dataset(ds, back)
    assert back.labels == ds.labels
    proposals = {(a.source, a.review_state) for i in back.images for a in i.annotations if a.score is not None}
    assert proposals == {("model:1", "proposed")}
    assert all(i.path is not None and i.path.is_file() for i in back.images)
    # the export of an import is byte-identical: nothing drifts over repeated round trips
    COCO.write(back, tmp_path / "again", WriteOptions(images="none"))
    assert (tmp_path / "again/annotations.json").read_bytes() == (tmp_path / "out/annotations.json").read_bytes()


def test_written_file_is_read_by_pycocotools(tmp_path: Path) -> None:
    from pycocotools.coco import COCO as PyCOCO

    ds = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"))
    COCO.write(ds, tmp_path / "out", WriteOptions(images="none"))
    oracle = PyCOCO(str(tmp_path / "out/annotations.json"))
    assert len(oracle.getImgIds()) == len(ds.images)
    assert len(oracle.getAnnIds()) == sum(len(i.annotations) for i in ds.images)
    for ann in oracle.loadAnns(oracle.getAnnIds()):
        if ann["segmentation"]:
            assert oracle.annToMask(ann).sum() > 0


def test_crowd_rle_in_both_count_forms_reads_the_same_pixels(tmp_path: Path) -> None:
    mask = np.zeros((40, 50), dtype=np.uint8)
    mask[10:20, 5:30] = 1
    compressed = mask_utils.encode(np.asfortranarray(mask))
    flat = mask.flatten(order="F")  # uncompressed COCO RLE: column-major run lengths, zeros first
    edges = np.flatnonzero(np.diff(flat)) + 1
    counts = [int(c) for c in np.diff([0, *edges, flat.size])]
    assert flat[0] == 0  # so the first run is already the zeros' run
    doc = _doc([
        {"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 10, 25, 10], "iscrowd": 1,
         "segmentation": {"size": [40, 50], "counts": compressed["counts"].decode()}},
        {"id": 2, "image_id": 7, "category_id": 9, "bbox": [5, 10, 25, 10], "iscrowd": 1,
         "segmentation": {"size": [40, 50], "counts": counts}},
    ])
    _write(tmp_path / "in", doc)
    ds = COCO.read(tmp_path / "in", ReadOptions())
    anns = ds.images[0].annotations
    assert [a.iscrowd for a in anns] == [True, True]
    for ann in anns:
        assert ann.rle is not None
        assert np.array_equal(rle_to_mask(ann.rle), mask)
    COCO.write(ds, tmp_path / "out", WriteOptions(images="none"))
    assert_same_dataset(ds, COCO.read(tmp_path / "out", ReadOptions()))


BAD = [
    ({"id": 1, "image_id": 7, "category_id": 42, "bbox": [1, 1, 5, 5]}, "unknown category_id 42"),
    ({"id": 1, "image_id": 99, "category_id": 3, "bbox": [1, 1, 5, 5]}, "unknown image_id 99"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1]}, "bbox"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5],
      "segmentation": {"size": [10, 10], "counts": "abc"}}, "does not match image"),
    # strings would be joined, not added ("10" + "3" is "103"): numbers only
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": ["10", "20", "3", "4"]}, "as 4 numbers"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": 5}, "expected bbox [x, y, w, h] as 4 numbers, got 5"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 5, -3, 10]}, "zero or negative area (w=-3, h=10)"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5], "segmentation": [["a", 1]]},
     "lists of numbers"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5], "score": "high"}, "score as a number"),
    ({"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5], "attributes": ["occluded"]},
     "attributes as an object"),
]


@pytest.mark.parametrize(("ann", "message"), BAD, ids=["category", "image", "bbox", "rle-size", "bbox-strings",
                                                        "bbox-number", "bbox-negative", "polygon-strings",
                                                        "score-string", "attributes-list"])
def test_bad_annotation_names_file_and_record(tmp_path: Path, ann: dict[str, Any], message: str) -> None:
    good = {"id": 2, "image_id": 7, "category_id": 9, "bbox": [2, 2, 10, 10]}
    path = _write(tmp_path, _doc([good, ann]))
    with pytest.raises(FormatError) as err:
        COCO.read(tmp_path, ReadOptions())
    text = str(err.value)
    assert message in text and "annotations[1]" in text and path.name in text
    # --skip-invalid keeps the good record and says what was skipped
    ds = COCO.read(tmp_path, ReadOptions(skip_invalid=True))
    assert [a.label for a in ds.images[0].annotations] == ["dog"]
    assert len(ds.skipped) == 1 and message in str(ds.skipped[0])


def test_a_flat_polygon_is_read_as_one_ring(tmp_path: Path) -> None:
    _write(tmp_path, _doc([{"id": 1, "image_id": 7, "category_id": 3, "bbox": [5, 5, 10, 10],
                            "segmentation": [5, 5, 15, 5, 15, 15]}]))
    assert COCO.read(tmp_path, ReadOptions()).images[0].annotations[0].polygons == [[5, 5, 15, 5, 15, 15]]


def test_duplicate_image_ids_are_refused_not_merged(tmp_path: Path) -> None:
    doc = _doc([{"id": 1, "image_id": 7, "category_id": 3, "bbox": [1, 1, 5, 5]}])
    doc["images"].append({"id": 7, "file_name": "b.jpg", "width": 50, "height": 40})
    _write(tmp_path, doc)
    with pytest.raises(FormatError, match=r"duplicate image id 7 \(also 'a.jpg'\)") as err:
        COCO.read(tmp_path, ReadOptions())
    assert "images[1]" in str(err.value) and "its own id" in str(err.value)
    kept = COCO.read(tmp_path, ReadOptions(skip_invalid=True))  # the first keeps its id and its annotation
    assert [(i.file_name, len(i.annotations)) for i in kept.images] == [("a.jpg", 1)]


def test_truncated_json_is_a_format_error(tmp_path: Path) -> None:
    path = _write(tmp_path, _doc([]))
    path.write_text(path.read_text()[:40], encoding="utf-8")
    with pytest.raises(FormatError) as err:
        COCO.read(tmp_path, ReadOptions())
    assert path.name in str(err.value)


@pytest.mark.datasets
def test_coco128_round_trips_with_crowd_masks(tmp_path: Path) -> None:
    root = shared_dataset("coco128")
    assert detect_format(root).name == "coco"
    ds = COCO.read(root, ReadOptions())
    assert len(ds.images) == 128 and not ds.skipped
    assert sum(len(i.annotations) for i in ds.images) == 939
    assert sum(a.iscrowd for i in ds.images for a in i.annotations) == 10
    COCO.write(ds, tmp_path / "out", WriteOptions(images="none"))
    assert_same_dataset(ds, COCO.read(tmp_path / "out", ReadOptions()))


@pytest.mark.datasets
@pytest.mark.parametrize("name", ["raccoon", "pennfudan", "labelme_examples"])
def test_shared_dataset_round_trips_through_coco(tmp_path: Path, name: str) -> None:
    root = shared_dataset(name)
    ds = detect_format(root).read(root, ReadOptions())
    assert ds.images and not ds.skipped
    COCO.write(ds, tmp_path / "out", WriteOptions(images="link"))
    back = COCO.read(tmp_path / "out", ReadOptions())
    assert_same_dataset(ds, back)
    assert all(i.path is not None and i.path.is_file() for i in back.images)
