"""Label Studio JSON: round trips with predictions, URL mapping, brush RLE, bad input, detection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from factories import assert_same_dataset, make_dataset
from labelloop.core.geometry import rle_to_mask
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format
from labelloop.formats.labelstudio import decode_brush_rle, encode_brush_rle

LS = get_format("labelstudio")


def _rect(x: float, y: float, w: float, h: float, label: str = "cat", **extra: Any) -> dict[str, Any]:
    return {"id": "r1", "type": "rectanglelabels", "from_name": "label", "to_name": "image",
            "original_width": 200, "original_height": 100,
            "value": {"x": x, "y": y, "width": w, "height": h, "rotation": 0, "rectanglelabels": [label],
                      **extra}}


def _write(tmp_path: Path, tasks: Any, name: str = "export.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(tasks), encoding="utf-8")
    return path


def test_round_trip_keeps_shapes_scores_and_model_versions(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"), with_proposals=True)
    ds.labels.append("unused")
    LS.write(ds, tmp_path / "out", WriteOptions())
    back = LS.read(tmp_path / "out", ReadOptions())
    assert_same_dataset(ds, back)
    assert back.labels == ds.labels  # order and unused classes come back through label_config.xml
    tasks = json.loads((tmp_path / "out/tasks.json").read_text())
    preds = [p for t in tasks for p in t["predictions"]]
    assert preds and {p["model_version"] for p in preds} == {"model:1"}
    assert all("score" in r for p in preds for r in p["result"])
    proposals = [(a.source, a.review_state) for i in back.images for a in i.annotations if a.score is not None]
    assert set(proposals) == {("model:1", "proposed")}
    assert all(i.path is not None for i in back.images)


def test_full_precision_accepted_proposals_and_multi_ring(tmp_path: Path) -> None:
    box = (10.123456789012, 20.987654321098, 70.5555555555555, 80.3333333333333)
    rings = [[1.5, 1, 10, 1, 10, 8], [20, 20, 30, 20, 30, 30, 20, 30]]
    anns = [AnnotationRecord("cat", box, score=0.75, source="m:2", review_state="accepted",
                             attributes={"note": "x"}),
            AnnotationRecord("dog", (1.5, 1, 30, 30), polygons=rings, iscrowd=True)]
    ds = DatasetRecord(labels=["cat", "dog"], images=[ImageRecord("sub/a b.png", 100, 90, annotations=anns)])
    LS.write(ds, tmp_path, WriteOptions(images="none"))
    back = LS.read(tmp_path / "tasks.json", ReadOptions())
    assert back.images[0].file_name == "sub/a b.png"
    cat, dog = back.images[0].annotations
    assert np.allclose(cat.bbox, box, atol=1e-9, rtol=0)
    assert (cat.score, cat.source, cat.review_state, cat.attributes) == (0.75, "m:2", "accepted", {"note": "x"})
    assert dog.polygons is not None and len(dog.polygons) == 2 and dog.iscrowd
    for got, want in zip(dog.polygons, rings, strict=True):
        assert np.allclose(got, want, atol=1e-9, rtol=0)


def test_image_urls_map_back_to_file_names(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images/photo.jpg").write_bytes(b"x")
    (tmp_path / "1234abcd-kept.jpg").write_bytes(b"x")
    tasks = [{"id": 1, "data": {"image": "/data/upload/3/deadbeef-photo.jpg"}, "annotations": []},
             {"id": 2, "data": {"image": "/data/upload/3/1234abcd-kept.jpg"}},
             {"id": 3, "data": {"image": "/data/local-files/?d=dataset/imgs/p%20q.png"}},
             {"id": 4, "data": {"image": "https://example.com/a/b/remote.png?sig=1"}},
             {"id": 5, "data": {"image": "plain/relative.png"}},
             # URLs are percent-encoded: the file is 'my cat.png'
             {"id": 6, "data": {"image": "https://example.com/x/my%20cat.png"}},
             {"id": 7, "data": {"image": "s3://bucket/dir/caf%C3%A9.png"}},
             {"id": 8, "data": {"image": "/data/upload/3/abcdef12-my%20dog.png"}}]
    ds = LS.read(_write(tmp_path, tasks), ReadOptions())
    names = [i.file_name for i in ds.images]
    assert names == ["photo.jpg", "1234abcd-kept.jpg", "dataset/imgs/p q.png", "remote.png", "plain/relative.png",
                     "my cat.png", "café.png", "my dog.png"]
    assert ds.images[0].path == tmp_path / "images/photo.jpg"


def test_rotated_rectangle_becomes_enclosing_box(tmp_path: Path) -> None:
    # 40x20 px box at (20, 10) rotated 90 degrees clockwise about its top-left corner
    task = {"data": {"image": "a.png"}, "annotations": [{"result": [_rect(10, 10, 20, 20, rotation=90)]}]}
    ann = LS.read(_write(tmp_path, [task]), ReadOptions()).images[0].annotations[0]
    assert ann.bbox == pytest.approx((0, 10, 20, 50))
    assert ann.attributes["source_rotation"] == 90


def test_predictions_and_annotation_choice(tmp_path: Path) -> None:
    task = {"id": 7, "data": {"image": "a.png"},
            "annotations": [{"id": 1, "result": [_rect(1, 1, 5, 5, "dog")]},
                            {"id": 2, "result": [_rect(1, 1, 5, 5)], "ground_truth": True},
                            {"id": 3, "result": [_rect(1, 1, 9, 9)], "was_cancelled": True}],
            "predictions": [{"model_version": "yolo-3", "score": 0.4, "result": [_rect(50, 50, 10, 10)]},
                            {"model_version": "yolo-4", "result": [{**_rect(60, 60, 10, 10), "score": 0.9}]}]}
    ds = LS.read(_write(tmp_path, [task]), ReadOptions())
    got = [(a.label, a.source, a.score, a.review_state) for a in ds.images[0].annotations]
    assert got == [("cat", "human", None, None), ("cat", "yolo-3", 0.4, "proposed"),
                   ("cat", "yolo-4", 0.9, "proposed")]
    assert any("2 annotations" in s for s in ds.skipped)


def test_json_min_export(tmp_path: Path) -> None:
    rows = [{"image": "/data/upload/1/0a1b2c3d-a.png", "id": 1, "annotation_id": 4,
             "label": [{"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["cat"],
                        "original_width": 200, "original_height": 100}],
             "poly": [{"points": [[0, 0], [50, 0], [50, 50]], "polygonlabels": ["dog"], "closed": True,
                       "original_width": 200, "original_height": 100}]}]
    path = _write(tmp_path, rows)
    assert detect_format(path).name == "labelstudio"
    ds = LS.read(path, ReadOptions())
    image = ds.images[0]
    assert image.file_name == "a.png" and (image.width, image.height) == (200, 100)
    assert [a.bbox for a in image.annotations] == [pytest.approx((20, 20, 80, 60)), pytest.approx((0, 0, 100, 50))]


def test_brush_rle_round_trip_and_literal_chunks() -> None:
    mask = np.zeros((37, 53), dtype=np.uint8)
    mask[3:30, 10:50] = 1
    mask[10, 0:53] = 1
    assert np.array_equal(decode_brush_rle(encode_brush_rle(mask), 37, 53), mask)
    # a hand-built stream: 8 values, word 8 bits, sizes 3/4/8/16; one literal chunk of 4 RGBA values
    # (a transparent pixel) then a repeat chunk of 4 x 255 (an opaque one)
    bits = f"{8:032b}{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))
    bits += "0" + "00" + f"{3:03b}" + "".join(f"{v:08b}" for v in (9, 9, 9, 0))
    bits += "1" + "00" + f"{3:03b}" + f"{255:08b}"
    bits += "0" * (-len(bits) % 8)
    stream = list(int(bits, 2).to_bytes(len(bits) // 8, "big"))
    assert decode_brush_rle(stream, 1, 2).tolist() == [[0, 1]]


def test_brush_region_is_read(tmp_path: Path) -> None:
    mask = np.zeros((10, 20), dtype=np.uint8)
    mask[2:5, 3:9] = 1
    result = {"id": "b", "type": "brushlabels", "original_width": 20, "original_height": 10,
              "value": {"format": "rle", "rle": encode_brush_rle(mask), "brushlabels": ["cat"]}}
    ann = LS.read(_write(tmp_path, [{"data": {"image": "a.png"}, "annotations": [{"result": [result]}]}]),
                  ReadOptions()).images[0].annotations[0]
    assert np.array_equal(rle_to_mask(ann.rle), mask) and ann.bbox == (3, 2, 9, 5)


@pytest.mark.parametrize(("result", "reason"), [
    (_rect(90, 10, 20, 10), "x + width=110"),
    (_rect(-5, 10, 20, 10), "x=-5 is outside 0..100"),
    (_rect(10, 10, 0, 10), "zero or negative area"),
    ({"id": "p", "type": "polygonlabels", "original_width": 10, "original_height": 10,
      "value": {"points": [[0, 0], [150, 0], [5, 5]], "polygonlabels": ["cat"]}}, "points[1].x=150"),
    ({"id": "n", "type": "rectanglelabels", "original_width": 10, "original_height": 10,
      "value": {"x": 1, "y": 1, "width": 5, "height": 5}}, "region has no label"),
    ({**_rect(10, 10, 5, 5), "value": {**_rect(10, 10, 5, 5)["value"], "x": None}},
     "expected x as a number (a percentage of the image size), got None"),
    ({"id": "q", "type": "polygonlabels", "original_width": 10, "original_height": 10,
      "value": {"points": [{"x": 1, "y": 1}] * 3, "polygonlabels": ["cat"]}}, "expected value.points[0] as an [x, y]"),
])
def test_bad_regions_name_file_and_record_or_are_skipped(tmp_path: Path, result: dict[str, Any],
                                                         reason: str) -> None:
    tasks = [{"id": 9, "data": {"image": "a.png"}, "annotations": [{"result": [result, _rect(1, 1, 5, 5)]}]}]
    path = _write(tmp_path, tasks)
    with pytest.raises(FormatError) as info:
        LS.read(path, ReadOptions())
    assert reason in str(info.value) and str(path) in str(info.value)
    assert info.value.record == "task 9 annotations[0].result[0]"
    ds = LS.read(path, ReadOptions(skip_invalid=True))
    assert len(ds.skipped) == 1 and reason in ds.skipped[0] and len(ds.images[0].annotations) == 1


def test_a_foreign_labelloop_field_is_ignored_not_a_crash(tmp_path: Path) -> None:
    region = {**_rect(1, 1, 5, 5), "labelloop": [["group", "g"]]}  # not the object our writer puts there
    tasks = [{"id": 1, "data": {"image": "a.png"}, "annotations": [{"result": [region]}]}]
    assert len(LS.read(_write(tmp_path, tasks), ReadOptions()).images[0].annotations) == 1


def test_path_traversal_and_truncated_json(tmp_path: Path) -> None:
    tasks = [{"id": 1, "data": {"image": "/data/local-files/?d=../../etc/passwd"}},
             {"id": 2, "data": {"image": "ok.png"}}]
    path = _write(tmp_path, tasks)
    with pytest.raises(FormatError, match=r"\[task 1\]: unsafe image file name"):
        LS.read(path, ReadOptions())
    assert [i.file_name for i in LS.read(path, ReadOptions(skip_invalid=True)).images] == ["ok.png"]
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(tasks)[:-7], encoding="utf-8")
    with pytest.raises(FormatError, match=r"broken.json: invalid JSON at line 1"):
        LS.read(broken, ReadOptions(skip_invalid=True))


def test_detection_does_not_confuse_label_studio_and_coco(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "src", n_images=2, kinds=("box", "polygon"), with_proposals=True)
    LS.write(ds, tmp_path / "ls", WriteOptions(images="none"))
    get_format("coco").write(ds, tmp_path / "coco", WriteOptions(images="none"))
    assert detect_format(tmp_path / "ls").name == "labelstudio"
    assert detect_format(tmp_path / "ls/tasks.json").name == "labelstudio"
    assert detect_format(tmp_path / "coco").name == "coco"
    assert detect_format(tmp_path / "coco/annotations.json").name == "coco"
    assert get_format("labelstudio").detect(tmp_path / "coco/annotations.json") == 0.0
    assert get_format("coco").detect(tmp_path / "ls/tasks.json") == 0.0
    with pytest.raises(FormatError, match="expected a list of Label Studio tasks.*try --format coco"):
        LS.read(tmp_path / "coco/annotations.json", ReadOptions())
