"""YOLO (Darknet + Ultralytics): round trips, layouts, confidence column, bad input."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factories import assert_same_dataset, make_dataset, make_image
from labelloop.core.geometry import mask_to_rle, polygons_to_rle, rle_iou
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format


@dataclass(frozen=True)
class ProposalOptions(WriteOptions):
    """WriteOptions as ``--include-proposals`` sets them (see the report on base.WriteOptions)."""

    include_proposals: bool = True


def _yolo():
    return get_format("yolo")


def _save_image(path: Path, w: int = 100, h: int = 50) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(make_image(h, w)).save(path)


def _darknet(tmp_path: Path, lines: str, names: str = "cat\ndog\n") -> Path:
    """A CVAT YOLO 1.1 style folder: obj.names + obj_train_data/{a.png, a.txt}."""
    root = tmp_path / "darknet"
    _save_image(root / "obj_train_data" / "a.png")
    (root / "obj_train_data" / "a.txt").write_text(lines)
    (root / "obj.names").write_text(names)
    return root


def test_detect_round_trip_keeps_boxes_to_1e_6(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("box",), with_proposals=True, n_images=5)
    _yolo().write(original, tmp_path / "out", WriteOptions())
    back = _yolo().read(tmp_path / "out", ReadOptions())
    assert_same_dataset(original, back, tol=1e-6)
    assert back.labels == original.labels
    assert {i.split for i in back.images} == {"train"}
    assert all(a.score is None for i in back.images for a in i.annotations)  # no --include-proposals


def test_second_export_is_byte_identical(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("box", "polygon"), n_images=3)
    _yolo().write(original, tmp_path / "a", WriteOptions(task="segment"))
    _yolo().write(_yolo().read(tmp_path / "a", ReadOptions()), tmp_path / "b", WriteOptions(task="segment"))
    for label in (tmp_path / "a" / "labels" / "train").iterdir():
        assert label.read_text() == (tmp_path / "b" / "labels" / "train" / label.name).read_text()


def test_proposal_scores_are_a_trailing_column_only_when_asked(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("box",), with_proposals=True, n_images=4)
    _yolo().write(original, tmp_path / "out", ProposalOptions())
    back = _yolo().read(tmp_path / "out", ReadOptions())
    assert_same_dataset(original, back)
    scored = [a for i in back.images for a in i.annotations if a.score is not None]
    assert len(scored) == sum(a.score is not None for i in original.images for a in i.annotations) > 0
    assert all(a.review_state == "proposed" and a.source == "model" for a in scored)


def test_segment_round_trip_polygons_masks_and_boxes(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("polygon", "mask", "box"), with_proposals=True,
                            n_images=6, seed=3)
    files = _yolo().write(original, tmp_path / "out", WriteOptions(task="segment"))
    assert tmp_path / "out" / "data.yaml" in files and (tmp_path / "out" / "obj.names").is_file()
    back = _yolo().read(tmp_path / "out", ReadOptions())
    assert back.task == "segment"
    # masks come back as polygons, boxes as boxes (written as down-first rectangles)
    assert_same_dataset(original, back, mask_iou=0.999)
    kinds = sorted(a.kind for i in back.images for a in i.annotations)
    assert "box" in kinds and "polygon" in kinds


def test_mask_in_two_parts_is_one_line_with_the_same_pixels(tmp_path: Path) -> None:
    mask = np.zeros((40, 60), dtype=np.uint8)
    mask[5:15, 5:20] = 1
    mask[20:35, 30:55] = 1
    _save_image(tmp_path / "src" / "two.png", 60, 40)
    rle = mask_to_rle(mask)
    ds = DatasetRecord(labels=["blob"], images=[ImageRecord(
        "two.png", 60, 40, tmp_path / "src" / "two.png",
        annotations=[AnnotationRecord("blob", (5.0, 5.0, 55.0, 35.0), rle=rle)])])
    _yolo().write(ds, tmp_path / "out", WriteOptions(task="segment"))
    assert len((tmp_path / "out" / "labels" / "train" / "two.txt").read_text().splitlines()) == 1
    ann = _yolo().read(tmp_path / "out", ReadOptions()).images[0].annotations[0]
    assert rle_iou(polygons_to_rle(ann.polygons or [], 40, 60), rle) >= 0.999


def test_splits_map_to_folders_and_back(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", n_images=4)
    for image, split in zip(original.images, ["train", "val", "test", None], strict=True):
        image.split = split
    _yolo().write(original, tmp_path / "out", WriteOptions())
    assert (tmp_path / "out" / "images" / "val" / original.images[1].file_name).is_file()
    back = _yolo().read(tmp_path / "out", ReadOptions())
    assert {i.file_name: i.split for i in back.images} == {
        original.images[0].file_name: "train", original.images[1].file_name: "val",
        original.images[2].file_name: "test", original.images[3].file_name: "train"}


def test_reads_darknet_cvat_layout_with_split_from_folder(tmp_path: Path) -> None:
    root = _darknet(tmp_path, "1 0.5 0.5 0.2 0.4\n")
    assert detect_format(root).name == "yolo"
    ds = _yolo().read(root, ReadOptions())
    image = ds.images[0]
    assert (image.file_name, image.split, image.width, image.height) == ("a.png", "train", 100, 50)
    ann = image.annotations[0]
    assert ann.label == "dog"
    assert np.allclose(ann.bbox, (40.0, 15.0, 60.0, 35.0))


def test_reads_ultralytics_names_dict_and_roboflow_paths(tmp_path: Path) -> None:
    root = tmp_path / "rf"
    _save_image(root / "train" / "images" / "x.jpg")
    (root / "train" / "labels").mkdir(parents=True)
    (root / "train" / "labels" / "x.txt").write_text("3 0.5 0.5 0.5 0.5 0.87\n")
    (root / "data.yaml").write_text("path: /somewhere/else\ntrain: ../train/images\nval: ../valid/images\n"
                                    "names:\n  0: a\n  3: d\n")
    ds = _yolo().read(root, ReadOptions())
    assert ds.labels == ["a", "d"]
    ann = ds.images[0].annotations[0]
    assert (ann.label, ann.score, ds.images[0].split) == ("d", 0.87, "train")


def test_refuses_data_yaml_pointing_outside_the_dataset(tmp_path: Path) -> None:
    (tmp_path / "outside").mkdir()
    root = tmp_path / "ds"
    root.mkdir()
    (root / "data.yaml").write_text("train: ../outside\nnames: [a]\n")
    with pytest.raises(FormatError, match="outside the dataset folder"):
        _yolo().read(root, ReadOptions())


def test_data_yaml_whose_splits_are_all_missing_is_refused_not_scanned(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _save_image(root / "imgs" / "a.jpg")
    (root / "lbls").mkdir(parents=True)
    (root / "lbls" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text("train: pics/train\nval: pics/val\nnames: [a]\n")
    with pytest.raises(FormatError, match="the splits data.yaml names do not exist") as err:
        _yolo().read(root, ReadOptions())
    assert "'train' points to 'pics/train'; 'val' points to 'pics/val'" in str(err.value)
    assert "fix the paths in data.yaml" in str(err.value)


def test_box_edges_a_little_past_the_border_are_kept_and_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    root = tmp_path / "ds"
    _save_image(root / "images" / "a.jpg")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("0 0.95 0.5 0.12 0.2\n")  # right edge 1.01
    (root / "classes.txt").write_text("a\n")
    ann = _yolo().read(root, ReadOptions()).images[0].annotations[0]
    assert ann.bbox[2] == pytest.approx(101.0)  # the image is 100 px wide
    (root / "labels" / "a.txt").write_text("\ufeff0 0.5 0.5 0.2 0.2\n", encoding="utf-8")  # Notepad's BOM
    (root / "classes.txt").write_text("\ufeffa\n", encoding="utf-8")
    ds = _yolo().read(root, ReadOptions())
    assert ds.labels == ["a"] and len(ds.images[0].annotations) == 1
    (root / "labels" / "a.txt").write_text("0 0.95 0.5 0.2 0.2\n")  # right edge 1.05: a wrong box
    with pytest.raises(FormatError, match=r"box edge 1.05 \(cx \+- w/2\) is more than 2% outside \[0, 1\]"):
        _yolo().read(root, ReadOptions())


BAD_LINES = [
    ("7 0.5 0.5 0.2 0.2", "unknown class index 7"),
    ("0 0.5 abc 0.2 0.2", "expected a number, got 'abc'"),
    ("cat 0.5 0.5 0.2 0.2", "expected an integer class index"),
    ("0 0.5 0.5 0.2", "expected 'class cx cy w h"),
    ("0 1.5 0.5 0.2 0.2", "outside \\[0, 1\\]"),
    ("0 0.95 0.5 0.2 0.2", "outside \\[0, 1\\]"),
    ("0 120 30 40 20", "outside \\[0, 1\\]"),
    ("0 0.5 0.5 0 0.2", "zero-area box"),
    ("0 0.1 0.1 0.2 0.2 0.3 0.3", "zero area"),
    ("0 0.5 0.5 0.2 0.2 1.7", "confidence in \\[0, 1\\]"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_bad_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    root = _darknet(tmp_path, f"0 0.5 0.5 0.2 0.2\n\n{line}\n")
    with pytest.raises(FormatError, match=message) as info:
        _yolo().read(root, ReadOptions())
    assert info.value.file and info.value.file.endswith("a.txt")
    assert info.value.record == "line 3"


def test_skip_invalid_collects_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    root = _darknet(tmp_path, "0 0.5 0.5 0.2 0.2\n9 0.5 0.5 0.2 0.2\n0 2 2 2 2\n1 0.3 0.3 0.1 0.1\n")
    ds = _yolo().read(root, ReadOptions(skip_invalid=True))
    assert [a.label for a in ds.images[0].annotations] == ["cat", "dog"]
    assert len(ds.skipped) == 2
    assert "[line 2]" in ds.skipped[0] and "[line 3]" in ds.skipped[1]


def test_label_file_without_image_is_reported(tmp_path: Path) -> None:
    root = _darknet(tmp_path, "0 0.5 0.5 0.2 0.2\n")
    (root / "obj_train_data" / "lost.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(FormatError, match="no image for this label file"):
        _yolo().read(root, ReadOptions())
    assert len(_yolo().read(root, ReadOptions(skip_invalid=True)).images) == 1


def test_names_file_errors_are_clear(tmp_path: Path) -> None:
    root = _darknet(tmp_path, "0 0.5 0.5 0.2 0.2\n", names="cat\n\ndog\n")
    with pytest.raises(FormatError, match="empty class name"):
        _yolo().read(root, ReadOptions())
    (root / "obj.names").unlink()
    with pytest.raises(FormatError, match="no data.yaml, obj.names or classes.txt"):
        _yolo().read(root, ReadOptions())


def test_detect_scores(tmp_path: Path) -> None:
    assert _yolo().detect(_darknet(tmp_path, "")) >= 0.8
    (tmp_path / "empty").mkdir()
    assert _yolo().detect(tmp_path / "empty") == 0.0


def test_reads_labelimg_flat_folder_and_yaml_image_lists(tmp_path: Path) -> None:
    flat = tmp_path / "flat"
    _save_image(flat / "a.jpg")
    (flat / "a.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (flat / "classes.txt").write_text("cat\n")
    assert detect_format(flat).name == "yolo"
    assert [len(i.annotations) for i in _yolo().read(flat, ReadOptions()).images] == [1]
    listed = tmp_path / "listed"
    _save_image(listed / "images" / "val" / "b.png")
    (listed / "labels" / "val").mkdir(parents=True)
    (listed / "labels" / "val" / "b.txt").write_text("0 0.1 0.1 0.2 0.2\n")
    (listed / "val.txt").write_text("./images/val/b.png\n")
    (listed / "data.yaml").write_text("train: val.txt\nval: val.txt\nnames: [cat]\n")
    ds = _yolo().read(listed, ReadOptions())
    assert [(i.file_name, i.split, len(i.annotations)) for i in ds.images] == [("b.png", "train", 1)]


def test_shapes_outside_the_image_are_clipped_on_export(tmp_path: Path) -> None:
    _save_image(tmp_path / "src" / "a.png", 100, 50)
    ds = DatasetRecord(labels=["cat"], images=[ImageRecord("a.png", 100, 50, tmp_path / "src" / "a.png",
        annotations=[AnnotationRecord("cat", (-10.0, 10.0, 50.0, 60.0)),
                     AnnotationRecord("cat", (120.0, 10.0, 130.0, 20.0))])])
    _yolo().write(ds, tmp_path / "out", WriteOptions())
    assert (tmp_path / "out" / "labels" / "train" / "a.txt").read_text() == "0 0.25 0.6 0.5 0.8\n"
