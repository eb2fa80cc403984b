"""CVAT for images 1.1 XML: boxes, polygons and masks, with model proposals.

Layout read and written: ``annotations.xml`` + ``images/`` (CVAT's own export; project
exports may put images under ``images/<subset>/``). Labels come from every
``<meta>/.../<labels>/<label>/<name>`` (task, job and project layouts); a shape whose
label is not declared there is an error (when the file declares labels at all).

Shapes read: ``<box>`` (a ``rotation`` becomes the enclosing axis-aligned box, noted in
the ``source_rotation`` attribute), ``<polygon>``, ``<mask>`` (CVAT's RLE: comma-separated
run lengths over the ``width`` x ``height`` crop at ``left``/``top``, row-major, starting
with a run of zeros) and ``<ellipse>`` (a 64-point polygon). Polylines, points, cuboids,
skeletons and tags are skipped with a note. Polygons of one label sharing a ``group_id``
are one object with several rings (as CVAT's COCO export treats groups); the writer
uses that for multi-ring polygons.

Model proposals: CVAT 2.x has no score in XML, so labelloop writes ``source="auto"`` and
``<attribute>`` children ``score`` (repr float), ``model_version`` (the record's source,
e.g. ``model:3``) and ``review_state``; the meta declares them as text attributes so CVAT
accepts the file. On read, ``source="auto"`` without ``review_state`` is a proposal.
``is_crowd`` (CVAT's COCO convention), ``occluded`` and ``z_order`` map to the record.

Coordinates are written at full float precision (CVAT writes 2 decimals; its readers
accept any float), so import -> export -> import is exact. XML is parsed with
``defusedxml`` and DTDs are refused, so entity-expansion attacks fail with a FormatError.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from functools import partial
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from labelloop.core.geometry import (
    check_mask_size,
    cvat_rle_to_mask,
    ellipse_to_polygon,
    mask_to_cvat_rle,
    mask_to_rle,
    polygons_bbox,
    rle_bbox_xyxy,
    rle_to_mask,
)
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ReadOptions,
    Recorder,
    WriteOptions,
    find_image,
    make_annotation,
    place_image,
    read_image_size,
    register_format,
    safe_relative_name,
)

__all__ = ["CvatFormat"]

_SHAPES = ("box", "polygon", "mask", "ellipse")
_UNSUPPORTED = ("polyline", "points", "cuboid", "skeleton", "tag")
#: attributes promoted to record fields (never left in ``attributes``)
_SPECIAL = ("score", "model_version", "review_state", "is_crowd")
_HEAD_BYTES = 4096


def _num(value: float) -> str:
    """Shortest text that parses back to exactly ``value`` (``12`` rather than ``12.0``)."""
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _looks_like_cvat(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError:
        return False
    return b"<annotations" in head and (b"<version>" in head or b"<meta" in head or b"<image " in head)


def _cvat_xml_files(path: Path) -> list[Path]:
    """``annotations.xml`` in a folder (else any CVAT-looking ``*.xml``), or the file itself."""
    if path.is_file():
        return [path]
    preferred = path / "annotations.xml"
    if preferred.is_file():
        return [preferred]
    return [p for p in sorted(path.glob("*.xml")) if _looks_like_cvat(p)]


@register_format
class CvatFormat(AnnotationFormat):
    name = "cvat"
    description = "CVAT for images 1.1 XML (boxes, polygons, masks; proposals via attributes)"
    holds = frozenset({"box", "polygon", "mask", "score"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return 0.95 if path.suffix.lower() == ".xml" and _looks_like_cvat(path) else 0.0
        return 0.85 if _cvat_xml_files(path) else 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        files = _cvat_xml_files(path)
        if not files:
            raise FormatError("no CVAT XML file found", "expected annotations.xml from a 'CVAT for images "
                              "1.1' export", file=str(path))
        recorder = Recorder(options)
        merged = DatasetRecord(labels=[], images=[])
        seen: set[str] = set()
        for file in files:
            part = _read_file(file, recorder, seen)
            merged.labels += [lab for lab in part.labels if lab not in merged.labels]
            merged.images.extend(part.images)
        merged.ensure_labels()
        merged.skipped = recorder.skipped
        return merged

    def write(self, dataset: DatasetRecord, out: Path, options: WriteOptions) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        root = _to_xml(dataset)
        ET.indent(root, space="  ")
        target = out / "annotations.xml"
        tmp = target.with_suffix(".xml.tmp")
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
        tmp.replace(target)
        for image in dataset.images:
            place_image(image.path, out / "images" / image.file_name, options.images)
        return [target]


# ---------------------------------------------------------------- reading


def _parse(file: Path) -> Element:
    """Parse safely (no DTD, no entities); a bad or truncated file is a FormatError with line and column."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, parse

    try:
        root = parse(str(file), forbid_dtd=True).getroot()
    except DefusedXmlException as exc:
        raise FormatError(f"refused XML with a DTD or entity declarations ({type(exc).__name__})",
                          "CVAT never writes these; they can expand into gigabytes (billion laughs). "
                          "Re-export the annotations from CVAT", file=str(file)) from exc
    except ParseError as exc:
        line, col = getattr(exc, "position", (0, 0))
        raise FormatError(f"invalid XML at line {line} column {col}",
                          "is the file complete? re-export it from CVAT", file=str(file)) from exc
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", file=str(file)) from exc
    if root is None or root.tag != "annotations":
        raise FormatError(f"expected an <annotations> root element, got <{getattr(root, 'tag', None)}>",
                          "is this a Pascal VOC file? try --format voc", file=str(file))
    return root


def _meta_labels(root: Element) -> list[str]:
    """Declared class names from every ``<labels>`` under ``<meta>`` (task, job or project), in order."""
    names: list[str] = []
    meta = root.find("meta")
    if meta is None:
        return names
    for labels in meta.iter("labels"):
        for label in labels.findall("label"):
            name = (label.findtext("name") or "").strip()
            if name and name not in names:
                names.append(name)
    return names


def _read_file(file: Path, recorder: Recorder, seen: set[str]) -> DatasetRecord:
    """One ``annotations.xml`` into a DatasetRecord."""
    root = _parse(file)
    labels = _meta_labels(root)
    images = root.findall("image")
    if not images and root.find("track") is not None:
        raise FormatError("this is a 'CVAT for video' export (tracks), which is not supported",
                          "export the task as 'CVAT for images 1.1'", file=str(file))
    dataset = DatasetRecord(labels=labels, images=[])
    for i, el in enumerate(images):
        image = _read_image(el, i, file, recorder, seen)
        if image is not None:
            image.annotations = _read_shapes(el, image, file, set(labels), recorder)
            dataset.images.append(image)
    return dataset


def _image_roots(file: Path, subset: str | None) -> list[Path]:
    roots = [file.parent / "images", file.parent]
    if subset:
        roots.insert(0, file.parent / "images" / subset)
    return roots


def _read_image(el: Element, i: int, file: Path, recorder: Recorder, seen: set[str]) -> ImageRecord | None:
    """An ``<image>`` element into an ImageRecord (safe name, size, split from ``subset``)."""
    record = f"image[{i}] id={el.get('id')}"
    try:
        name = safe_relative_name(el.get("name") or "", file=file, record=record)
    except FormatError as err:
        recorder.invalid(file, record, err.reason, err.hint)
        return None
    if name in seen:
        recorder.invalid(file, record, f"duplicate image {name!r}", "each image must appear once")
        return None
    seen.add(name)
    subset = el.get("subset") or None
    path = find_image(name, _image_roots(file, subset))
    try:
        width, height = int(el.get("width") or 0), int(el.get("height") or 0)
    except ValueError:
        width = height = 0
    if width <= 0 or height <= 0:
        width, height = (v or 0 for v in read_image_size(path))
    if width <= 0 or height <= 0:
        recorder.invalid(file, record, f"expected positive integer width/height on image {name!r}, got "
                         f"{el.get('width')!r}x{el.get('height')!r}")
        return None
    return ImageRecord(file_name=name, width=width, height=height, path=path,
                       split=subset.lower() if subset else None)


def _read_shapes(el: Element, image: ImageRecord, file: Path, labels: set[str],
                 recorder: Recorder) -> list[AnnotationRecord]:
    """The shapes of one ``<image>``; grouped polygons of one label become one multi-ring record."""
    out: list[AnnotationRecord] = []
    groups: dict[tuple[str, str], AnnotationRecord] = {}
    for k, shape in enumerate(el):
        record = f"image {image.file_name!r} <{shape.tag}> #{k}"
        if shape.tag in _UNSUPPORTED:
            recorder.skipped.append(f"{file} [{record}]: <{shape.tag}> is not supported; skipped")
            continue
        if shape.tag not in _SHAPES:
            continue
        label = shape.get("label") or ""
        if labels and label not in labels:
            recorder.invalid(file, record, f"label {label!r} is not declared in <meta> labels",
                             f"declared: {', '.join(sorted(labels)[:20])}; add it to the task's labels")
            continue
        ann = make_annotation(recorder, file, record, partial(_shape, shape, image))
        if ann is None:
            continue
        group = shape.get("group_id") or "0"
        if shape.tag == "polygon" and group != "0":
            key = (ann.label, group)
            if key in groups:
                _merge_rings(groups[key], ann)
                continue
            groups[key] = ann
        out.append(ann)
    for ann in groups.values():
        if len(ann.polygons or []) > 1:
            ann.attributes.pop("group_id", None)
    return out


def _merge_rings(into: AnnotationRecord, other: AnnotationRecord) -> None:
    into.polygons = (into.polygons or []) + (other.polygons or [])
    into.bbox = polygons_bbox(into.polygons)


def _shape(el: Element, image: ImageRecord) -> AnnotationRecord:
    """One ``<box>``, ``<polygon>``, ``<ellipse>`` or ``<mask>`` into a record (raises ValueError if bad)."""
    attrs = {a.get("name") or "": a.text or "" for a in el.findall("attribute")}
    extra: dict[str, Any] = {k: v for k, v in attrs.items() if k not in _SPECIAL}
    if el.get("occluded") == "1":
        extra["occluded"] = True
    if el.get("z_order") not in (None, "", "0"):
        extra["z_order"] = int(_attr(el, "z_order", integer=True))
    if el.get("group_id") not in (None, "", "0"):
        extra["group_id"] = int(_attr(el, "group_id", integer=True))
    polygons = rle = None
    if el.tag == "box":
        bbox = _box(el, extra)
    elif el.tag == "polygon":
        polygons = [_points(el.get("points") or "")]
        bbox = polygons_bbox(polygons)
    elif el.tag == "ellipse":
        polygons = [_ellipse(el)]
        bbox = polygons_bbox(polygons)
    else:
        rle = _mask(el, image)
        bbox = rle_bbox_xyxy(rle)
    source, score, review = _provenance(el.get("source"), attrs)
    return AnnotationRecord(label=el.get("label") or "", bbox=bbox, polygons=polygons, rle=rle,
                            iscrowd=attrs.get("is_crowd", "").lower() in ("true", "1"), score=score,
                            source=source, review_state=review, attributes=extra)


def _provenance(cvat_source: str | None, attrs: dict[str, str]) -> tuple[str, float | None, str | None]:
    """``(source, score, review_state)`` from CVAT's ``source`` and labelloop's attributes."""
    score = float(attrs["score"]) if attrs.get("score", "").strip() else None
    review = attrs.get("review_state") or None
    if cvat_source == "auto" or attrs.get("model_version"):
        return attrs.get("model_version") or "model", score, review or "proposed"
    return "human", score, review


def _attr(el: Element, key: str, *, default: float | None = None, integer: bool = False) -> float:
    """The number in attribute ``key`` of ``el`` (``default`` when absent), else a ValueError naming it."""
    raw = el.get(key)
    if raw is None or raw.strip() == "":
        if default is None:
            raise ValueError(f"<{el.tag}> has no {key!r} attribute")
        return default
    try:
        value = float(raw) if not integer else int(raw)
    except ValueError:
        raise ValueError(f"expected <{el.tag}> {key!r} as {'an integer' if integer else 'a number'}, "
                         f"got {raw[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected <{el.tag}> {key!r} as a finite number, got {raw[:40]!r}")
    return value


def _box(el: Element, extra: dict[str, Any]) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` of a box; a rotated box becomes its enclosing axis-aligned box."""
    x1, y1, x2, y2 = (_attr(el, k) for k in ("xtl", "ytl", "xbr", "ybr"))
    angle = _attr(el, "rotation", default=0.0)
    if angle % 360.0 == 0.0:
        return (x1, y1, x2, y2)
    # CVAT rotates about the box centre, clockwise in degrees; keep the enclosing box.
    extra["source_rotation"] = angle
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    a = math.radians(angle)
    ex = abs(hw * math.cos(a)) + abs(hh * math.sin(a))
    ey = abs(hw * math.sin(a)) + abs(hh * math.cos(a))
    return (cx - ex, cy - ey, cx + ex, cy + ey)


def _points(text: str) -> list[float]:
    """CVAT's ``x,y;x,y`` into a flat ring."""
    ring: list[float] = []
    for pair in text.split(";"):
        xy = pair.split(",")
        if len(xy) != 2:
            raise ValueError(f"expected points as 'x,y;x,y;...', got {text[:60]!r}")
        ring += [float(xy[0]), float(xy[1])]
    return ring


def _ellipse(el: Element) -> list[float]:
    cx, cy, rx, ry = (_attr(el, k) for k in ("cx", "cy", "rx", "ry"))
    return ellipse_to_polygon(cx, cy, rx, ry, math.radians(_attr(el, "rotation", default=0.0)))


def _mask(el: Element, image: ImageRecord) -> dict[str, Any]:
    """CVAT mask RLE (crop at left/top) into a full-image COCO RLE."""
    left, top, width, height = (int(_attr(el, k, integer=True)) for k in ("left", "top", "width", "height"))
    if left < 0 or top < 0 or width <= 0 or height <= 0:
        raise ValueError(f"expected mask left/top >= 0 and width/height > 0, got {left}, {top}, {width}x{height}")
    text = el.get("rle") or ""
    parts = text.replace(" ", "").split(",")
    if not all(v.isdigit() for v in parts if v):
        raise ValueError(f"expected rle as comma-separated non-negative run lengths, got {text[:40]!r}")
    runs = [int(v) for v in parts if v]
    if not runs:
        raise ValueError("expected rle as comma-separated non-negative run lengths")
    if image.height is None or image.width is None:
        raise ValueError("a mask needs the image's width and height")
    if left + width > image.width or top + height > image.height:  # (checked before any pixel is allocated)
        raise ValueError(f"mask {width}x{height} at {left},{top} does not fit in the image "
                         f"{image.width}x{image.height}")
    check_mask_size(image.height, image.width)
    full = cvat_rle_to_mask(runs, left, top, width, height, image.height, image.width)
    if not full.any():
        raise ValueError("mask is empty")
    return mask_to_rle(full)


# ---------------------------------------------------------------- writing


def _attr_text(value: Any) -> str:
    """Attribute value as CVAT text (booleans as ``true``/``false``, floats exact, others JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, str | int):
        return str(value)
    return json.dumps(value)


def _to_xml(dataset: DatasetRecord) -> Element:
    """The whole ``<annotations>`` document."""
    root = Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    ET.SubElement(root, "meta").append(_meta(dataset))
    next_group = 1 + max((int(a.attributes.get("group_id", 0)) for i in dataset.images for a in i.annotations
                          if str(a.attributes.get("group_id", "0")).isdigit()), default=0)
    for idx, image in enumerate(dataset.images):
        width, height = image.width, image.height
        if width is None or height is None:
            width, height = read_image_size(image.path)
        if width is None or height is None:
            raise FormatError(f"image {image.file_name!r} has no width/height and its file was not found",
                              "CVAT needs image sizes; import with the images beside the annotations")
        el = ET.SubElement(root, "image", {"id": str(idx), "name": image.file_name, "width": str(width),
                                           "height": str(height)})
        if image.split:
            el.set("subset", image.split)
        for ann in image.annotations:
            next_group = _write_annotation(el, ann, next_group)
    return root


def _meta(dataset: DatasetRecord) -> Element:
    """``<task>`` meta with every class and the attributes used, so CVAT accepts the file."""
    task = Element("task")
    ET.SubElement(task, "name").text = "labelloop export"
    ET.SubElement(task, "size").text = str(len(dataset.images))
    ET.SubElement(task, "mode").text = "annotation"
    used: set[str] = set()
    for image in dataset.images:
        for ann in image.annotations:
            used.update(k for k in ann.attributes if k not in ("occluded", "z_order", "group_id"))
            if ann.source != "human" or ann.score is not None or ann.review_state:
                used.update(("score", "model_version", "review_state"))
            if ann.iscrowd:
                used.add("is_crowd")
    labels = ET.SubElement(task, "labels")
    for name in list(dict.fromkeys(dataset.labels + [a.label for i in dataset.images for a in i.annotations])):
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "any"
        attributes = ET.SubElement(label, "attributes")
        for attr in sorted(used):
            spec = ET.SubElement(attributes, "attribute")
            ET.SubElement(spec, "name").text = attr
            ET.SubElement(spec, "mutable").text = "False"
            ET.SubElement(spec, "input_type").text = "checkbox" if attr == "is_crowd" else "text"
            ET.SubElement(spec, "default_value").text = "false" if attr == "is_crowd" else ""
            ET.SubElement(spec, "values").text = "false" if attr == "is_crowd" else ""
    return task


def _common(ann: AnnotationRecord) -> dict[str, str]:
    attrs = {"label": ann.label, "source": "manual" if ann.source == "human" else "auto",
             "occluded": "1" if ann.attributes.get("occluded") else "0",
             "z_order": str(int(ann.attributes.get("z_order", 0) or 0))}
    return attrs


def _write_annotation(parent: Element, ann: AnnotationRecord, next_group: int) -> int:
    """Append one record as ``<mask>``, ``<polygon>`` (one per ring) or ``<box>``; returns the next free group id."""
    common = _common(ann)
    if ann.rle is not None and _write_mask(parent, ann, common):
        return next_group
    if ann.polygons:
        group = str(ann.attributes.get("group_id", "")) if len(ann.polygons) == 1 else str(next_group)
        if len(ann.polygons) > 1:
            next_group += 1
        for ring in ann.polygons:
            points = ";".join(f"{_num(ring[i])},{_num(ring[i + 1])}" for i in range(0, len(ring), 2))
            el = ET.SubElement(parent, "polygon", {**common, "points": points})
            if group:
                el.set("group_id", group)
            _write_attributes(el, ann)
        return next_group
    x1, y1, x2, y2 = ann.bbox
    el = ET.SubElement(parent, "box", {**common, "xtl": _num(x1), "ytl": _num(y1), "xbr": _num(x2),
                                       "ybr": _num(y2)})
    if "group_id" in ann.attributes:
        el.set("group_id", str(ann.attributes["group_id"]))
    _write_attributes(el, ann)
    return next_group


def _write_mask(parent: Element, ann: AnnotationRecord, common: dict[str, str]) -> bool:
    """Write ``ann.rle`` as a CVAT ``<mask>`` cropped to its pixels; False when the mask is empty."""
    if ann.rle is None:
        return False
    full = rle_to_mask(ann.rle)
    ys, xs = np.nonzero(full)
    if ys.size == 0:
        return False
    left, top = int(xs.min()), int(ys.min())
    width, height = int(xs.max()) - left + 1, int(ys.max()) - top + 1
    runs = mask_to_cvat_rle(full, left, top, width, height)
    el = ET.SubElement(parent, "mask", {**common, "rle": ", ".join(map(str, runs)), "left": str(left),
                                        "top": str(top), "width": str(width), "height": str(height)})
    if "group_id" in ann.attributes:
        el.set("group_id", str(ann.attributes["group_id"]))
    _write_attributes(el, ann)
    return True


def _write_attributes(el: Element, ann: AnnotationRecord) -> None:
    """``<attribute>`` children: free attributes plus score, model_version, review_state, is_crowd."""
    values: dict[str, Any] = {k: v for k, v in ann.attributes.items()
                              if k not in ("occluded", "z_order", "group_id") and k not in _SPECIAL}
    if ann.score is not None:
        values["score"] = float(ann.score)
    if ann.source != "human":
        values["model_version"] = ann.source
    if ann.review_state:
        values["review_state"] = ann.review_state
    if ann.iscrowd:
        values["is_crowd"] = True
    for name, value in values.items():
        ET.SubElement(el, "attribute", {"name": name}).text = _attr_text(value)
