"""VIA JSON import: shapes, class names, splits, bad input; the balloon dataset through COCO, CVAT, LS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from factories import assert_same_dataset
from helpers import shared_dataset
from labelloop.errors import ConfigError, FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format

VIA = get_format("via")


def _entry(name: str, regions: Any) -> dict[str, Any]:
    return {"filename": name, "size": 1, "regions": regions, "file_attributes": {}}


def _project(tmp_path: Path, entries: dict[str, Any], folder: str = "fruit/train") -> Path:
    root = tmp_path / folder
    root.mkdir(parents=True)
    for entry in entries.values():
        if not entry["filename"].startswith((".", "/")):
            Image.new("RGB", (120, 80)).save(root / entry["filename"])
    path = root / "via_region_data.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return path


def test_reads_shapes_names_sizes_and_split(tmp_path: Path) -> None:
    regions = {"0": {"shape_attributes": {"name": "polygon", "all_points_x": [1, 9, 9], "all_points_y": [1, 1, 7]},
                     "region_attributes": {}},
               "1": {"shape_attributes": {"name": "rect", "x": 10, "y": 20, "width": 5, "height": 6},
                     "region_attributes": {"type": "apple", "note": ""}},
               "2": {"shape_attributes": {"name": "circle", "cx": 50, "cy": 40, "r": 10},
                     "region_attributes": {"kind": {"pear": True, "plum": False}}},
               "3": {"shape_attributes": {"name": "ellipse", "cx": 80, "cy": 40, "rx": 10, "ry": 5, "theta": 0},
                     "region_attributes": {}},
               "4": {"shape_attributes": {"name": "point", "cx": 1, "cy": 1}, "region_attributes": {}}}
    path = _project(tmp_path, {"a.jpg1": _entry("a.jpg", regions),
                               "b.jpg1": _entry("b.jpg", [regions["1"]])})
    ds = VIA.read(path.parent.parent, ReadOptions())
    assert detect_format(path.parent.parent).name == "via" and detect_format(path).name == "via"
    assert [i.file_name for i in ds.images] == ["train/a.jpg", "train/b.jpg"]
    image = ds.images[0]
    assert (image.width, image.height, image.split) == (120, 80, "train")
    assert [a.label for a in image.annotations] == ["fruit", "apple", "pear", "fruit"]
    assert [a.kind for a in image.annotations] == ["polygon", "box", "polygon", "polygon"]
    assert image.annotations[1].bbox == (10, 20, 15, 26)
    assert image.annotations[2].bbox == pytest.approx((40, 30, 60, 50))
    assert image.annotations[3].bbox == pytest.approx((70, 35, 90, 45))
    assert ds.labels == ["fruit", "apple", "pear"]
    assert any("point regions are not objects" in s for s in ds.skipped)


def test_reads_via2_project_file(tmp_path: Path) -> None:
    entries = {"a.jpg1": _entry("a.jpg", [{"shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 5,
                                                                "height": 5}, "region_attributes": {}}])}
    path = _project(tmp_path, entries, "shapes")
    path.write_text(json.dumps({"_via_settings": {}, "_via_img_metadata": entries, "_via_attributes": {}}))
    ds = VIA.read(path, ReadOptions())
    assert ds.images[0].split is None and ds.images[0].annotations[0].label == "shapes"


@pytest.mark.parametrize(("entry", "reason"), [
    (_entry("../../secret.jpg", []), "unsafe image file name"),
    (_entry("c.jpg", [{"shape_attributes": {"name": "rect", "x": 1, "y": 1, "width": 0, "height": 5}}]),
     "zero or negative area"),
    (_entry("c.jpg", [{"shape_attributes": {"name": "polygon", "all_points_x": [1, 2], "all_points_y": [1]}}]),
     "all_points_x has 2 values"),
])
def test_bad_entries_name_file_and_record_or_are_skipped(tmp_path: Path, entry: dict[str, Any],
                                                         reason: str) -> None:
    path = _project(tmp_path, {"bad": entry, "ok": _entry("ok.jpg", [])})
    with pytest.raises(FormatError) as info:
        VIA.read(path, ReadOptions())
    assert reason in str(info.value) and str(path) in str(info.value) and info.value.record
    ds = VIA.read(path, ReadOptions(skip_invalid=True))
    assert len(ds.skipped) == 1 and reason in ds.skipped[0] and "ok.jpg" in [i.file_name for i in ds.images]


def test_truncated_json_and_export_refused(tmp_path: Path) -> None:
    path = _project(tmp_path, {"ok": _entry("ok.jpg", [])})
    dataset = VIA.read(path, ReadOptions())
    with pytest.raises(ConfigError, match="can only be imported"):
        VIA.write(dataset, tmp_path / "o", WriteOptions())
    path.write_text(path.read_text()[:-3])
    with pytest.raises(FormatError, match="invalid JSON"):
        VIA.read(path, ReadOptions(skip_invalid=True))


@pytest.mark.datasets
def test_balloon_counts_and_round_trips_through_coco_cvat_and_labelstudio(tmp_path: Path) -> None:
    root = shared_dataset("balloon")
    assert detect_format(root).name == "via"
    ds = VIA.read(root, ReadOptions())
    splits = [i.split for i in ds.images]
    assert (splits.count("train"), splits.count("val")) == (61, 13)
    assert sum(len(i.annotations) for i in ds.images) == 305
    assert ds.labels == ["balloon"] and not ds.skipped
    assert all(a.kind == "polygon" for i in ds.images for a in i.annotations)
    assert all(i.width and i.height for i in ds.images)
    for name in ("coco", "cvat", "labelstudio"):
        fmt = get_format(name)
        fmt.write(ds, tmp_path / name, WriteOptions(images="link"))
        back = fmt.read(tmp_path / name, ReadOptions())
        assert detect_format(tmp_path / name).name == name
        assert_same_dataset(ds, back, mask_iou=0.999)
