"""Instance-mask PNG folders (import only), as in Penn-Fudan.

Layout: images in ``PNGImages/`` (or ``images/``, ``JPEGImages/``) and one single-channel
PNG per image in ``PedMasks/`` (or ``masks/``, ``Masks/``) named ``<stem>_mask.png`` or
``<stem>.png``, whose pixel value is the instance id (0 = background). Each id becomes
one annotation with a COCO RLE mask and its tight pixel-edge box.

Class names come from optional PASCAL 1.0 text files ``Annotation/<stem>.txt``
(``Original label for object 2 "PASpersonWalking"`` -> ``person``; the raw label is kept
in ``attributes["pascal_label"]``), else every instance gets the dataset folder's name.
An image without a mask file is read with no annotations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from labelloop.core.geometry import mask_to_rle, rle_bbox_xyxy
from labelloop.core.records import IMAGE_EXTENSIONS, AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import AnnotationFormat, ReadOptions, Recorder, register_format

__all__ = ["MaskFolderFormat", "pascal_class_name"]

_IMAGE_DIRS = ("PNGImages", "images", "JPEGImages")
_MASK_DIRS = ("PedMasks", "masks", "Masks")
_OBJECT_LABEL = re.compile(r'^Original label for object (\d+) "([^"]+)"', re.MULTILINE)
_DETAILS_LABEL = re.compile(r'^# Details for \w+ (\d+) \("([^"]+)"\)', re.MULTILINE)


@dataclass(frozen=True)
class _Layout:
    root: Path
    images: Path
    masks: Path


@register_format
class MaskFolderFormat(AnnotationFormat):
    name = "masks"
    description = "instance-mask PNG folders (Penn-Fudan: PNGImages/ + PedMasks/), import only"
    can_write = False
    holds = frozenset({"mask"})

    def detect(self, path: Path) -> float:
        layout = _find_layout(path) if path.is_dir() else None
        if layout is None:
            return 0.0
        if any(layout.masks.glob("*_mask.png")):
            return 0.9
        return 0.6 if any(layout.masks.glob("*.png")) else 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        layout = _find_layout(path)
        if layout is None:
            raise FormatError("no instance-mask folder found", "expected PNGImages/ (or images/) and PedMasks/ "
                              "(or masks/) with one <stem>_mask.png per image", file=str(path))
        recorder = Recorder(options)
        default = _default_class(layout.root)
        images: list[ImageRecord] = []
        for image_path in sorted(p for p in layout.images.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS):
            image = _read_image(image_path, layout, default, recorder)
            if image is not None:
                images.append(image)
        dataset = DatasetRecord(labels=[], images=images, task="segment", skipped=recorder.skipped)
        dataset.ensure_labels()
        return dataset


def _find_layout(path: Path) -> _Layout | None:
    images = next((path / d for d in _IMAGE_DIRS if (path / d).is_dir()), None)
    masks = next((path / d for d in _MASK_DIRS if (path / d).is_dir()), None)
    if images is None or masks is None:
        return None
    return _Layout(path, images, masks)


def pascal_class_name(label: str) -> str:
    """``PASpersonWalking`` -> ``person``: PASCAL 1.0 labels are ``PAS`` + class + pose."""
    match = re.match(r"^PAS([A-Za-z][a-z]*)", label)
    return (match.group(1) if match else label).lower()


def _default_class(root: Path) -> str:
    return root.resolve().name.lower() or "object"


def _mask_file(image: Path, masks: Path) -> Path | None:
    for name in (f"{image.stem}_mask.png", f"{image.stem}.png"):
        if (masks / name).is_file():
            return masks / name
    return None


def _read_image(path: Path, layout: _Layout, default: str, recorder: Recorder) -> ImageRecord | None:
    from PIL import Image

    mask_path = _mask_file(path, layout.masks)
    try:
        with Image.open(path) as im:
            width, height = im.size
        ids = _load_ids(mask_path) if mask_path is not None else None
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        recorder.invalid(mask_path or path, "image", f"cannot read: {exc}")
        return None
    image = ImageRecord(file_name=path.name, width=int(width), height=int(height), path=path)
    if ids is None or mask_path is None:
        return image
    if ids.shape != (height, width):
        recorder.invalid(mask_path, "mask", f"mask is {ids.shape[1]}x{ids.shape[0]} but the image is "
                         f"{width}x{height}", "each mask must have the size of its image")
        return None
    labels = _pascal_labels(layout.root / "Annotation" / f"{path.stem}.txt", recorder)
    for instance in (int(v) for v in np.unique(ids) if v != 0):
        raw = labels.get(instance)
        rle = mask_to_rle(ids == instance)
        image.annotations.append(AnnotationRecord(
            label=pascal_class_name(raw) if raw else default, bbox=rle_bbox_xyxy(rle), rle=rle,
            attributes={"pascal_label": raw} if raw else {}))
    return image


def _load_ids(mask_path: Path) -> np.ndarray:
    """``(H, W)`` instance ids; refuses colour masks, whose values are not ids."""
    from PIL import Image

    with Image.open(mask_path) as im:
        if im.mode not in ("L", "P", "I", "I;16", "1"):
            raise ValueError(f"expected a single-channel instance mask (pixel value = instance id), got mode "
                             f"{im.mode}; convert colour masks to ids first")
        return np.asarray(im)


def _pascal_labels(file: Path, recorder: Recorder) -> dict[int, str]:
    """Object number -> raw label (``PASpersonWalking``) from a PASCAL 1.0 annotation text file."""
    if not file.is_file():
        return {}
    try:
        text = file.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        recorder.invalid(file, "file", f"cannot read: {exc.strerror}")
        return {}
    labels = {int(n): label for n, label in _DETAILS_LABEL.findall(text)}
    labels.update({int(n): label for n, label in _OBJECT_LABEL.findall(text)})
    return labels
