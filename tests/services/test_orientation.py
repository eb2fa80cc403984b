"""One pixel convention end to end: a JPEG with an EXIF rotation is read as stored by every reader
(import, annotate, training items, pre-annotation, thumbnails, export), so its boxes stay on the
pixels they were drawn on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from labelloop.errors import InvalidInputError
from labelloop.services.annotations import AnnotationInput, create_annotation
from labelloop.services.datasets import sample_for_images
from labelloop.services.exporting import export_project
from labelloop.services.images import thumbnail
from labelloop.services.importing import import_path
from labelloop.services.preannotate import preannotate, read_rgb
from labelloop.services.projects import new_project
from labelloop.store.images import decode_rgb
from selection.loopkit import OraclePredictor, add_fake_model, image_ids

W, H = 160, 96  # stored landscape; EXIF orientation 6 says "show it rotated 90 degrees" (portrait)
RED = (250, 10, 10)


def _rotated_jpeg(path: Path) -> np.ndarray:
    pixels = np.full((H, W, 3), 90, np.uint8)
    pixels[20:50, 10:50] = RED  # the object, at x 10..50, y 20..50 of the stored pixels
    exif = PILImage.Exif()
    exif[0x0112] = 6
    PILImage.fromarray(pixels).save(path, "JPEG", quality=95, exif=exif)
    with PILImage.open(path) as im:
        assert im.getexif().get(0x0112) == 6
    return pixels


def _coco(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    _rotated_jpeg(root / "images" / "phone.jpg")
    (root / "annotations.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "phone.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 20, 40, 30], "area": 1200,
                         "iscrowd": 0}]}))
    return root


def _is_red(pixels: np.ndarray, box: list[float]) -> bool:
    x0, y0, x1, y1 = (round(v) for v in box)
    patch = pixels[y0 + 3 : y1 - 3, x0 + 3 : x1 - 3].reshape(-1, 3).astype(int)
    return bool(len(patch)) and bool((patch[:, 0] > 200).all() and (patch[:, 1] < 60).all())


def test_a_rotated_jpeg_keeps_its_boxes_on_its_pixels(tmp_path: Path) -> None:
    ctx = new_project(tmp_path / "p", labels=["thing"])
    assert import_path(ctx, _coco(tmp_path / "coco"), format="coco").images_added == 1
    iid = image_ids(ctx)["phone.jpg"]
    # annotate: a person draws a second box on the stored pixels
    create_annotation(ctx, iid, AnnotationInput(label="thing", bbox=(10, 20, 50, 50)), actor="ann")
    # training: the item is the stored landscape image with the object under its box
    from labelloop.training.data import SampleDataset

    (sample,) = sample_for_images(ctx, [iid])
    assert (sample.width, sample.height) == (W, H)
    image, target = SampleDataset([sample], "detect", image_size=W, augment="none")[0]
    assert tuple(image.shape) == (3, H, W)
    assert all(_is_red(image.permute(1, 2, 0).numpy(), b) for b in target["boxes"].tolist())
    # pre-annotation decodes the same pixels: an oracle keyed by the stored pixels answers
    stored = read_rgb(sample.path)
    assert stored.shape == (H, W, 3) and _is_red(stored, [10, 20, 50, 50])
    oracle = OraclePredictor(["thing"])
    oracle.add(stored, [[100, 60, 140, 90]], [0.9], ["thing"])  # (a box not drawn yet)
    from labelloop.store.tables import Image

    with ctx.store.session() as s:  # pre-annotation works on images not labelled yet
        s.get(Image, iid).status = "unlabeled"
    summary = preannotate(ctx, model_id=add_fake_model(ctx, ["thing"]), predictor=oracle, threshold=0.5,
                          image_ids=[iid])
    assert summary["proposals"] == 1
    # the thumbnail is landscape too
    with PILImage.open(thumbnail(ctx, iid, 256)) as thumb:
        assert thumb.width > thumb.height
    # export: the same size and boxes, and the exported file's stored pixels are red under them
    export_project(ctx, tmp_path / "out", format="coco")
    out = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert [(i["width"], i["height"]) for i in out["images"]] == [(W, H)]
    exported = next((tmp_path / "out").rglob("phone.jpg"))
    pixels = decode_rgb(exported, max_pixels=10**8)
    for ann in out["annotations"]:
        x, y, w, h = ann["bbox"]
        assert _is_red(pixels, [x, y, x + w, y + h])
    ctx.close()


def test_the_one_decoder_enforces_the_pixel_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    PILImage.fromarray(np.zeros((100, 100, 3), np.uint8)).save(path)
    with pytest.raises(InvalidInputError, match="over the limit"):
        decode_rgb(path, max_pixels=5000)
    from labelloop.settings import get_settings
    from labelloop.training.data import load_rgb

    monkeypatch.setenv("LABELLOOP_MAX_IMAGE_PIXELS", "5000")
    get_settings.cache_clear()
    try:
        for reader in (load_rgb, read_rgb):  # training and pre-annotation both refuse it
            with pytest.raises(InvalidInputError, match="LABELLOOP_MAX_IMAGE_PIXELS"):
                reader(path)
    finally:
        monkeypatch.delenv("LABELLOOP_MAX_IMAGE_PIXELS")
        get_settings.cache_clear()
