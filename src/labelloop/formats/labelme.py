"""LabelMe JSON (one file per image), import only.

Each JSON holds ``shapes[]`` (``label``, ``points``, ``shape_type``, ``group_id``,
``flags``, ``description``), ``imagePath`` (relative to the JSON), ``imageWidth`` and
``imageHeight``. Embedded ``imageData`` is never required. Shapes:

* ``polygon`` -> polygon; polygons sharing a ``group_id`` and label are one object with
  several rings (as labelme's own ``labelme2coco`` treats them);
* ``rectangle`` (two corners, any order) -> box;
* ``circle`` (centre, a point on the rim) -> 64-point polygon;
* ``mask`` (base64 PNG of the box crop) -> mask;
* ``point``, ``points``, ``line``, ``linestrip`` are not objects: skipped with a note.

``__ignore__`` shapes (labelme's convention for "do not train or evaluate here") keep
their label and are marked ``iscrowd`` so COCO-style tools ignore them. A ``labels.txt``
beside the JSONs (or one folder up) sets the class order (``__ignore__`` and
``_background_`` lines are not classes). Image file names are relative to the folder read.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from labelloop.core.geometry import check_mask_size, ellipse_to_polygon, mask_to_rle, polygons_bbox, rle_bbox_xyxy
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ReadOptions,
    Recorder,
    load_json,
    make_annotation,
    read_image_size,
    register_format,
    safe_relative_name,
)

__all__ = ["LabelMeFormat"]

IGNORE_LABEL = "__ignore__"
_NOT_CLASSES = {IGNORE_LABEL, "_background_"}
_NOT_OBJECTS = {"point", "points", "line", "linestrip"}
_HEAD_BYTES = 65536


def _looks_like_labelme(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return False
    return b'"shapes"' in head and (b'"shape_type"' in head or b'"imagePath"' in head)


def _labelme_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in sorted(path.rglob("*.json")) if _looks_like_labelme(p)]


@register_format
class LabelMeFormat(AnnotationFormat):
    name = "labelme"
    description = "LabelMe JSON, one file per image (polygons, rectangles, circles, masks); import only"
    can_write = False
    holds = frozenset({"box", "polygon", "mask"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return 0.9 if path.suffix.lower() == ".json" and _looks_like_labelme(path) else 0.0
        for pattern in ("*.json", "*/*.json", "*/*/*.json"):
            if any(_looks_like_labelme(p) for p in sorted(path.glob(pattern))[:20]):
                return 0.8
        return 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        files = _labelme_files(path)
        if not files:
            raise FormatError("no LabelMe JSON file found", "expected *.json files with 'shapes' and "
                              "'imagePath', one per image", file=str(path))
        root = (path.parent if path.is_file() else path).resolve()
        recorder = Recorder(options)
        dataset = DatasetRecord(labels=_labels_txt(root, files), images=[])
        seen: set[str] = set()
        for file in files:
            image = _read_file(file, root, recorder, seen)
            if image is not None:
                dataset.images.append(image)
        dataset.ensure_labels()
        dataset.skipped = recorder.skipped
        return dataset


def _labels_txt(root: Path, files: list[Path]) -> list[str]:
    """Class order from a ``labels.txt`` near the JSONs (without ``__ignore__``/``_background_``)."""
    for folder in (root, files[0].parent, files[0].parent.parent):
        candidate = folder / "labels.txt"
        if candidate.is_file():
            lines = candidate.read_text(encoding="utf-8").splitlines()
            return list(dict.fromkeys(s.strip() for s in lines if s.strip() and s.strip() not in _NOT_CLASSES))
    return []


def _image_name(doc: dict[str, Any], file: Path, root: Path) -> tuple[str, Path]:
    """The image's name relative to ``root`` and its path; ``../images/x.jpg`` is allowed when it
    stays inside the folder read (or its parent, labelme's common layout)."""
    raw = str(doc.get("imagePath") or "").replace("\\", "/").strip()
    if not raw:
        raise FormatError("missing 'imagePath'", "LabelMe JSONs name their image in imagePath",
                          file=str(file), record="imagePath")
    if raw.startswith("/") or (len(raw) > 1 and raw[1] == ":"):
        raise FormatError(f"unsafe image path {raw!r}", "imagePath must be relative to the JSON file",
                          file=str(file), record="imagePath")
    target = (file.parent / raw).resolve()
    for base in (root, root.parent):
        if target.is_relative_to(base):
            rel = target.relative_to(base).as_posix()
            return safe_relative_name(rel, file=file, record="imagePath"), target
    raise FormatError(f"unsafe image path {raw!r}: it leaves the dataset folder",
                      "keep images beside the JSONs or in a sibling folder", file=str(file), record="imagePath")


def _read_file(file: Path, root: Path, recorder: Recorder, seen: set[str]) -> ImageRecord | None:
    """One LabelMe JSON into an ImageRecord."""
    doc = load_json(file)
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        recorder.invalid(file, "shapes", "expected a LabelMe object with a 'shapes' list")
        return None
    try:
        name, target = _image_name(doc, file, root)
    except FormatError as err:
        recorder.invalid(file, "imagePath", err.reason, err.hint)
        return None
    if name in seen:
        recorder.invalid(file, "imagePath", f"duplicate image {name!r}", "each image must have one JSON")
        return None
    seen.add(name)
    path = target if target.is_file() else None
    width, height = doc.get("imageWidth"), doc.get("imageHeight")
    if not (isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0):
        width, height = read_image_size(path)
    image = ImageRecord(file_name=name, width=width, height=height, path=path)
    image.annotations = _read_shapes(doc["shapes"], file, image, recorder)
    return image


def _read_shapes(shapes: list[Any], file: Path, image: ImageRecord, recorder: Recorder) -> list[AnnotationRecord]:
    """The shapes of one file; polygons sharing label and ``group_id`` become one record."""
    out: list[AnnotationRecord] = []
    groups: dict[tuple[str, Any], AnnotationRecord] = {}
    for i, shape in enumerate(shapes):
        record = f"shapes[{i}]"
        if not isinstance(shape, dict):
            recorder.invalid(file, record, f"expected an object, got {type(shape).__name__}")
            continue
        kind = str(shape.get("shape_type") or "polygon")
        if kind in _NOT_OBJECTS:
            recorder.skipped.append(f"{file} [{record}]: {kind} shapes are not objects; skipped")
            continue
        ann = make_annotation(recorder, file, record, partial(_shape, shape, kind, image))
        if ann is None:
            continue
        key = (ann.label, shape.get("group_id"))
        if kind == "polygon" and key[1] is not None and key in groups:
            merged = groups[key]
            merged.polygons = (merged.polygons or []) + (ann.polygons or [])
            merged.bbox = polygons_bbox(merged.polygons)
            continue
        if kind == "polygon" and key[1] is not None:
            groups[key] = ann
        out.append(ann)
    return out


def _points(shape: dict[str, Any]) -> list[tuple[float, float]]:
    pts = shape.get("points")
    if not isinstance(pts, list) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in pts):
        raise ValueError("expected 'points' as a list of [x, y] pairs")
    return [(float(p[0]), float(p[1])) for p in pts]


def _shape(shape: dict[str, Any], kind: str, image: ImageRecord) -> AnnotationRecord:
    """One shape into a record (raises ValueError if bad)."""
    label = shape.get("label")
    if not isinstance(label, str):
        raise ValueError(f"expected a string label, got {label!r}")
    attributes: dict[str, Any] = {}
    if shape.get("flags"):
        attributes["flags"] = dict(shape["flags"])
    if shape.get("description"):
        attributes["description"] = str(shape["description"])
    if shape.get("group_id") is not None:
        attributes["group_id"] = shape["group_id"]
    crowd = label == IGNORE_LABEL
    pts = _points(shape)
    if kind == "rectangle":
        if len(pts) != 2:
            raise ValueError(f"expected 2 corner points for a rectangle, got {len(pts)}")
        (xa, ya), (xb, yb) = pts
        return AnnotationRecord(label=label, bbox=(min(xa, xb), min(ya, yb), max(xa, xb), max(ya, yb)),
                                iscrowd=crowd, attributes=attributes)
    if kind == "mask":
        rle = _mask_rle(shape, pts, image)
        return AnnotationRecord(label=label, bbox=rle_bbox_xyxy(rle), rle=rle, iscrowd=crowd,
                                attributes=attributes)
    if kind == "circle":
        if len(pts) != 2:
            raise ValueError(f"expected centre and rim points for a circle, got {len(pts)}")
        (cx, cy), (px, py) = pts
        r = math.hypot(px - cx, py - cy)
        ring = ellipse_to_polygon(cx, cy, r, r)
    elif kind == "polygon":
        ring = [v for p in pts for v in p]
        if len(pts) < 3:
            raise ValueError(f"expected a polygon of >= 3 points, got {len(pts)}")
    else:
        raise ValueError(f"unknown shape_type {kind!r} (expected polygon, rectangle, circle or mask)")
    return AnnotationRecord(label=label, bbox=polygons_bbox([ring]), polygons=[ring], iscrowd=crowd,
                            attributes=attributes)


def _mask_rle(shape: dict[str, Any], pts: list[tuple[float, float]], image: ImageRecord) -> dict[str, Any]:
    """A ``mask`` shape (base64 PNG of its box) into a full-image COCO RLE."""
    from PIL import Image

    if image.width is None or image.height is None:
        raise ValueError("a mask shape needs imageWidth/imageHeight (or the image file)")
    if len(pts) != 2 or not isinstance(shape.get("mask"), str):
        raise ValueError("expected a mask shape with 2 corner points and a base64 PNG 'mask'")
    check_mask_size(image.height, image.width)
    try:
        with Image.open(io.BytesIO(base64.b64decode(shape["mask"]))) as img:
            crop = np.asarray(img.convert("L")) > 0
    except (OSError, binascii.Error) as exc:
        raise ValueError(f"the mask is not a base64 PNG ({exc})") from None
    left, top = round(min(pts[0][0], pts[1][0])), round(min(pts[0][1], pts[1][1]))
    full = np.zeros((image.height, image.width), dtype=np.uint8)
    h = max(0, min(crop.shape[0], image.height - top))
    w = max(0, min(crop.shape[1], image.width - left))
    full[top: top + h, left: left + w] = crop[:h, :w]
    if not full.any():
        raise ValueError("mask is empty")
    return mask_to_rle(full)
