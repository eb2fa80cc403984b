"""Cross-format chains between VOC and YOLO: boxes survive VOC -> YOLO -> VOC, raccoon included."""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import assert_same_dataset, make_dataset
from helpers import shared_dataset
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format


def _chain(start: Path, work: Path, names: list[str], images: str = "copy") -> Path:
    """Read ``start`` as ``names[0]``, write/read through each next format; return the last folder."""
    dataset = get_format(names[0]).read(start, ReadOptions())
    folder = start
    for step, name in enumerate(names[1:], start=1):
        folder = work / f"{step}_{name}"
        get_format(name).write(dataset, folder, WriteOptions(images=images))
        assert detect_format(folder).name == name
        dataset = get_format(name).read(folder, ReadOptions())
    return folder


def test_voc_to_yolo_to_voc_keeps_boxes(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("box",), n_images=6, seed=5)
    for image, split in zip(original.images, ["train", "val"] * 3, strict=True):
        image.split = split
    get_format("voc").write(original, tmp_path / "voc", WriteOptions())
    last = _chain(tmp_path / "voc", tmp_path, ["voc", "yolo", "voc"])
    back = get_format("voc").read(last, ReadOptions())
    assert_same_dataset(original, back, tol=1e-6)
    assert {i.file_name: i.split for i in back.images} == {i.file_name: i.split for i in original.images}


@pytest.mark.datasets
def test_raccoon_through_yolo_and_back(tmp_path: Path) -> None:
    raccoon = shared_dataset("raccoon")
    original = get_format("voc").read(raccoon, ReadOptions())
    last = _chain(raccoon, tmp_path, ["voc", "yolo", "voc"], images="link")
    yolo = get_format("yolo").read(tmp_path / "1_yolo", ReadOptions())
    assert (len(yolo.images), sum(len(i.annotations) for i in yolo.images)) == (200, 217)
    assert_same_dataset(original, yolo, tol=1e-6)
    assert_same_dataset(original, get_format("voc").read(last, ReadOptions()), tol=1e-6)
