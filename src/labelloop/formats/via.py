"""VGG Image Annotator (VIA) 1.x/2.x JSON, import only.

Reads the region export (``via_region_data.json``: ``{key: {filename, size, regions,
file_attributes}}``) and the 2.x project file (``_via_img_metadata`` holds the same).
``regions`` may be a dict (``{"0": region}``) or a list. Shapes: ``polygon``
(``all_points_x``/``all_points_y``), ``rect``, ``circle`` and ``ellipse`` (both become a
64-point polygon); ``polyline`` and ``point`` are not objects and are skipped with a note.

The class name is the first non-empty string in ``region_attributes`` (or the first
ticked option of a checkbox/dropdown attribute); without one it is the dataset folder's
name (``balloon/train/via_region_data.json`` -> ``balloon``). A ``train``/``val``/``test``
folder sets the split. Image sizes come from the image header only (no pixel decode).

:func:`ellipse_to_polygon` and :func:`read_image_size` are shared with the CVAT, Label
Studio and LabelMe readers.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from labelloop.core.geometry import ellipse_to_polygon, polygons_bbox
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ReadOptions,
    Recorder,
    load_json,
    make_annotation,
    read_head,
    read_image_size,
    register_format,
    safe_relative_name,
)

__all__ = ["ViaFormat"]

_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
           "test": "test", "testing": "test"}
_HEAD_BYTES = 8192


def _looks_like_via(path: Path) -> bool:
    head = read_head(path, _HEAD_BYTES)
    return b'"_via_img_metadata"' in head or (b'"regions"' in head and b'"filename"' in head) or (
        b'"shape_attributes"' in head)


def _via_json_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = sorted(path.glob("*.json")) + sorted(path.glob("*/*.json"))
    return [p for p in found if _looks_like_via(p)]


@register_format
class ViaFormat(AnnotationFormat):
    name = "via"
    description = "VGG Image Annotator 1.x/2.x JSON (polygons, rects, circles, ellipses); import only"
    can_write = False
    holds = frozenset({"box", "polygon"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return 0.9 if path.suffix.lower() == ".json" and _looks_like_via(path) else 0.0
        return 0.8 if _via_json_files(path) else 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        files = _via_json_files(path)
        if not files:
            raise FormatError("no VIA JSON file found", "expected via_region_data.json (a VIA 2.x region "
                              "export) in this folder or a train/val subfolder", file=str(path))
        root = path.parent if path.is_file() else path
        recorder = Recorder(options)
        dataset = DatasetRecord(labels=[], images=[])
        seen: set[str] = set()
        for file in files:
            dataset.images.extend(_read_file(file, root, recorder, seen))
        dataset.ensure_labels()
        dataset.skipped = recorder.skipped
        return dataset


def _split_of(folder: Path) -> str | None:
    return _SPLITS.get(folder.name.lower())


def _default_label(file: Path) -> str:
    """The dataset folder's name (above a train/val/test folder)."""
    folder = file.parent.resolve()
    if _split_of(folder) is not None:
        folder = folder.parent
    return folder.name or "object"


def _metadata(doc: Any, file: Path) -> dict[str, Any]:
    """The ``{key: image entry}`` mapping of a region export or a 2.x project file."""
    if isinstance(doc, dict) and isinstance(doc.get("_via_img_metadata"), dict):
        return doc["_via_img_metadata"]
    if isinstance(doc, dict) and ("project" in doc and "metadata" in doc and "file" in doc):
        raise FormatError("this is a VIA 3.x project, which is not supported",
                          "export annotations from VIA 2.x as JSON, or convert to COCO first", file=str(file))
    if not isinstance(doc, dict):
        raise FormatError(f"expected a VIA JSON object keyed by image, got a {type(doc).__name__}",
                          "is this a Label Studio export? try --format labelstudio", file=str(file))
    return doc


def _read_file(file: Path, root: Path, recorder: Recorder, seen: set[str]) -> list[ImageRecord]:
    """One VIA JSON into image records; names are relative to the folder read."""
    entries = _metadata(load_json(file), file)
    rel_dir = PurePosixPath(file.parent.resolve().relative_to(root.resolve()).as_posix()) \
        if file.parent.resolve().is_relative_to(root.resolve()) else PurePosixPath(".")
    split, default = _split_of(file.parent.resolve()), _default_label(file)
    images: list[ImageRecord] = []
    for key, entry in entries.items():
        image = _read_entry(key, entry, file, rel_dir, split, recorder, seen)
        if image is None:
            continue
        regions = entry.get("regions") or []
        if not isinstance(regions, dict | list):
            recorder.invalid(file, f"{key} regions", f"expected a list (or an object) of regions, got "
                             f"{type(regions).__name__}")
            continue
        items = list(regions.items()) if isinstance(regions, dict) else list(enumerate(regions))
        for idx, region in items:
            record = f"{key} regions[{idx}]"
            ann = _read_region(region, record, file, image, default, recorder)
            if ann is not None:
                image.annotations.append(ann)
        images.append(image)
    return images


def _read_entry(key: str, entry: Any, file: Path, rel_dir: PurePosixPath, split: str | None,
                recorder: Recorder, seen: set[str]) -> ImageRecord | None:
    """An image entry into an ImageRecord (safe name, size from the header)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str):
        recorder.invalid(file, str(key), "expected an object with a 'filename' and 'regions'")
        return None
    raw = entry["filename"]
    if raw.startswith(("http://", "https://")):  # VIA can annotate remote images; keep the file name
        raw = PurePosixPath(raw.split("?")[0]).name
    try:
        name = safe_relative_name(raw, file=file, record=str(key))
    except FormatError as err:
        recorder.invalid(file, str(key), err.reason, err.hint)
        return None
    file_name = str(rel_dir / name) if str(rel_dir) != "." else name
    if file_name in seen:
        recorder.invalid(file, str(key), f"duplicate image {file_name!r}", "each image must appear once")
        return None
    seen.add(file_name)
    candidate = file.parent / name
    path = candidate if candidate.is_file() else None
    width, height = read_image_size(path)
    return ImageRecord(file_name=file_name, width=width, height=height, path=path, split=split)


def _region_label(attrs: Any, default: str) -> str:
    """First non-empty string attribute, or first ticked option, or ``default``."""
    if isinstance(attrs, dict):
        for value in attrs.values():
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, dict):
                ticked = [k for k, v in value.items() if v is True or v == "true"]
                if ticked:
                    return str(ticked[0])
    return default


def _read_region(region: Any, record: str, file: Path, image: ImageRecord, default: str,
                 recorder: Recorder) -> AnnotationRecord | None:
    """One region into a record, a note (polyline, point) or a reported error."""
    if not isinstance(region, dict) or not isinstance(region.get("shape_attributes"), dict):
        recorder.invalid(file, record, "expected a region with 'shape_attributes'")
        return None
    shape = region["shape_attributes"]
    kind = shape.get("name")
    if kind in ("polyline", "point"):
        recorder.skipped.append(f"{file} [{record}]: {kind} regions are not objects; skipped")
        return None
    attrs = region.get("region_attributes") or {}
    label = _region_label(attrs, default)
    extra = {str(k): v for k, v in attrs.items()} if isinstance(attrs, dict) else {}
    return make_annotation(recorder, file, record, lambda: _shape_annotation(shape, label, extra))


def _shape_annotation(shape: dict[str, Any], label: str, attributes: dict[str, Any]) -> AnnotationRecord:
    """A VIA shape into a record (raises ValueError if bad)."""
    kind = shape.get("name")
    if kind == "rect":
        x, y, w, h = (float(shape[k]) for k in ("x", "y", "width", "height"))
        return AnnotationRecord(label=label, bbox=(x, y, x + w, y + h), attributes=attributes)
    if kind == "polygon":
        xs, ys = shape["all_points_x"], shape["all_points_y"]
        if len(xs) != len(ys):
            raise ValueError(f"all_points_x has {len(xs)} values but all_points_y has {len(ys)}")
        ring = [float(v) for pair in zip(xs, ys, strict=True) for v in pair]
    elif kind == "circle":
        r = float(shape["r"])
        ring = ellipse_to_polygon(float(shape["cx"]), float(shape["cy"]), r, r)
    elif kind == "ellipse":
        ring = ellipse_to_polygon(float(shape["cx"]), float(shape["cy"]), float(shape["rx"]),
                                  float(shape["ry"]), float(shape.get("theta", 0.0)))
    else:
        raise ValueError(f"unknown VIA shape {kind!r} (expected polygon, rect, circle or ellipse)")
    if len(ring) < 6:
        raise ValueError(f"expected a polygon of >= 3 points, got {len(ring) // 2}")
    return AnnotationRecord(label=label, bbox=polygons_bbox([ring]), polygons=[ring], attributes=attributes)
