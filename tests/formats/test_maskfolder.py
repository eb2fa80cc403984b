"""Instance-mask PNG folders (Penn-Fudan): ids -> RLE, class names, detection, bad masks, the real dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factories import make_image
from helpers import shared_dataset
from labelloop.core.geometry import rle_iou, rle_to_mask
from labelloop.errors import ConfigError, FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format
from labelloop.formats.maskfolder import pascal_class_name

PASCAL_TEXT = """# Compatible with PASCAL Annotation Version 1.00
Image filename : "PennFudanPed/PNGImages/p1.png"
Objects with ground truth : 2 { "PASpersonWalking" "PAScarSide" }
# Details for pedestrian 1 ("PASpersonWalking")
Original label for object 1 "PASpersonWalking" : "PennFudanPed"
# Details for pedestrian 2 ("PAScarSide")
Original label for object 2 "PAScarSide" : "PennFudanPed"
"""


def _masks():
    return get_format("masks")


def _pennfudan_like(root: Path, *, annotation: bool = True) -> np.ndarray:
    """PNGImages/p1.png + PedMasks/p1_mask.png with instances 1 and 2 (+ one image without a mask)."""
    ids = np.zeros((30, 40), dtype=np.uint8)
    ids[2:10, 3:12] = 1
    ids[15:28, 20:39] = 2
    (root / "PNGImages").mkdir(parents=True)
    (root / "PedMasks").mkdir()
    Image.fromarray(make_image(30, 40)).save(root / "PNGImages" / "p1.png")
    Image.fromarray(make_image(30, 40, seed=1)).save(root / "PNGImages" / "p2.png")
    Image.fromarray(ids, mode="L").save(root / "PedMasks" / "p1_mask.png")
    if annotation:
        (root / "Annotation").mkdir()
        (root / "Annotation" / "p1.txt").write_text(PASCAL_TEXT)
    return ids


def test_instances_become_rle_masks_with_pascal_class_names(tmp_path: Path) -> None:
    ids = _pennfudan_like(tmp_path / "peds")
    assert detect_format(tmp_path / "peds").name == "masks"
    ds = _masks().read(tmp_path / "peds", ReadOptions())
    assert [i.file_name for i in ds.images] == ["p1.png", "p2.png"] and not ds.images[1].annotations
    person, car = ds.images[0].annotations
    assert (person.label, car.label) == ("person", "car") and ds.labels == ["person", "car"]
    assert person.attributes == {"pascal_label": "PASpersonWalking"}
    assert np.array_equal(rle_to_mask(person.rle or {}), ids == 1)
    assert np.array_equal(rle_to_mask(car.rle or {}), ids == 2)
    assert person.bbox == (3.0, 2.0, 12.0, 10.0) and car.bbox == (20.0, 15.0, 39.0, 28.0)


def test_class_defaults_to_the_folder_name(tmp_path: Path) -> None:
    _pennfudan_like(tmp_path / "Walkers", annotation=False)
    ds = _masks().read(tmp_path / "Walkers", ReadOptions())
    assert ds.labels == ["walkers"]


@pytest.mark.parametrize(("raw", "name"), [("PASpersonWalking", "person"), ("PASPersonStanding", "person"),
                                           ("PASbicycle", "bicycle"), ("pedestrian", "pedestrian")])
def test_pascal_class_name(raw: str, name: str) -> None:
    assert pascal_class_name(raw) == name


def test_colour_and_wrong_size_masks_are_format_errors(tmp_path: Path) -> None:
    root = tmp_path / "peds"
    _pennfudan_like(root)
    Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)).save(root / "PedMasks" / "p1_mask.png")
    with pytest.raises(FormatError, match="single-channel instance mask") as info:
        _masks().read(root, ReadOptions())
    assert info.value.file and info.value.file.endswith("p1_mask.png")
    Image.fromarray(np.ones((10, 10), dtype=np.uint8)).save(root / "PedMasks" / "p2_mask.png")
    ds = _masks().read(root, ReadOptions(skip_invalid=True))
    assert ds.images == [] and len(ds.skipped) == 2 and "is 10x10 but the image is 40x30" in ds.skipped[1]


def test_detect_needs_the_mask_layout(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    assert _masks().detect(tmp_path) == 0.0
    (tmp_path / "masks").mkdir()
    assert _masks().detect(tmp_path) == 0.0  # no mask PNGs yet


def test_export_is_refused(tmp_path: Path) -> None:
    _pennfudan_like(tmp_path / "peds")
    ds = _masks().read(tmp_path / "peds", ReadOptions())
    with pytest.raises(ConfigError, match="only be imported"):
        _masks().write(ds, tmp_path / "out", WriteOptions())


@pytest.mark.datasets
def test_pennfudan_counts_and_masks_survive_coco(tmp_path: Path) -> None:
    root = shared_dataset("pennfudan")
    assert detect_format(root).name == "masks"
    ds = _masks().read(root, ReadOptions())
    assert (len(ds.images), sum(len(i.annotations) for i in ds.images)) == (170, 423)
    assert ds.labels == ["person"] and not ds.skipped
    coco = get_format("coco")
    coco.write(ds, tmp_path / "coco", WriteOptions(images="none"))
    back = coco.read(tmp_path / "coco", ReadOptions())
    originals = {i.file_name: i for i in ds.images}
    assert len(back.images) == 170
    for image in back.images:
        pairs = zip(originals[image.file_name].annotations, image.annotations, strict=True)
        for a, b in pairs:
            assert b.rle is not None and rle_iou(a.rle or {}, b.rle) >= 0.999
            assert np.allclose(a.bbox, b.bbox)
