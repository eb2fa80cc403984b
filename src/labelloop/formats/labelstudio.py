"""Label Studio JSON: the full export (a list of tasks) and the JSON-min export.

Read: each task's ``data.image`` (``/data/upload/<project>/<hash>-name.jpg``,
``/data/local-files/?d=path``, cloud or http URLs, or plain relative paths) becomes a
file name; the upload hash prefix (8 hex digits and ``-``) is dropped unless the file is
found with it. Regions (``rectanglelabels``, ``polygonlabels``, ``brushlabels``,
``ellipselabels``, and ``rectangle``/``polygon``/``brush`` paired with a ``labels``
result of the same id) carry ``value`` in PERCENT of ``original_width``/``original_height``.
A rotated rectangle (LS rotates about its top-left corner, clockwise) becomes the enclosing
axis-aligned box; the angle is kept in the ``source_rotation`` attribute. Brush masks use
Label Studio's RLE (thi.ng ``rle-pack`` over RGBA bytes; the alpha channel is the mask).

One annotation per task is read: the ``ground_truth`` one, else the last one not
cancelled; the others are listed in ``dataset.skipped``. Every prediction is read as
proposals: ``source`` = ``model_version``, ``score`` = the region's ``score`` or the
prediction's, ``review_state="proposed"``.

Write: ``tasks.json`` (full export layout), ``label_config.xml`` (a labeling config with
the classes in order; the reader uses it to keep class order and unused classes) and
``images/``. ``data.image`` is ``/data/local-files/?d=images/<file_name>`` (serve the
export folder as Label Studio's local-files document root). Human and accepted records go
under ``annotations``, proposals under ``predictions`` grouped by model version, each
region with its ``score``. What Label Studio has no field for (a record's source and
review state inside ``annotations``, attributes, ``iscrowd``, the rings of one
multi-polygon object) travels in a ``labelloop`` key on the region. Percentages are
written at full float precision, so coordinates round-trip within 1e-9 px.
"""

from __future__ import annotations

import json
import math
import re
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse

import numpy as np

from labelloop.core.geometry import ellipse_to_polygon, mask_to_rle, polygons_bbox, rle_bbox_xyxy, rle_to_mask
from labelloop.core.records import IMAGE_EXTENSIONS, AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ReadOptions,
    Recorder,
    WriteOptions,
    find_image,
    load_json,
    make_annotation,
    place_image,
    read_head,
    read_image_size,
    register_format,
    safe_relative_name,
)

__all__ = ["LabelStudioFormat", "decode_brush_rle", "encode_brush_rle", "read_regions", "region_results",
           "task_image_ref"]

#: tolerance on percentages, for float round-off at the image edge
PCT_TOL = 1e-6
_REGION_TYPES = {"rectanglelabels": "rectangle", "polygonlabels": "polygon", "brushlabels": "brush",
                 "ellipselabels": "ellipse", "rectangle": "rectangle", "polygon": "polygon",
                 "brush": "brush", "ellipse": "ellipse"}
_NON_REGIONS = {"labels", "choices", "textarea", "rating", "relation", "taxonomy", "number", "datetime"}
_UPLOAD_HASH = re.compile(r"^[0-9a-f]{8}-")
_IMAGE_EXT = tuple(sorted(IMAGE_EXTENSIONS))
_HEAD_BYTES = 8192
_CONFIG = "label_config.xml"


# ---------------------------------------------------------------- brush RLE


class _BitReader:
    """Reads big-endian bit fields from bytes (O(1) per field)."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def read(self, n: int) -> int:
        start, end = self.pos // 8, (self.pos + n + 7) // 8
        if end > len(self.data):
            raise ValueError("brush RLE ends early")
        chunk = int.from_bytes(self.data[start:end], "big")
        shift = (end - start) * 8 - (self.pos % 8) - n
        self.pos += n
        return (chunk >> shift) & ((1 << n) - 1)


def decode_brush_rle(rle: list[int], height: int, width: int) -> np.ndarray:
    """Label Studio brush RLE -> ``(height, width)`` uint8 mask (alpha channel > 0).

    The stream is thi.ng ``rle-pack``: 32-bit value count, 5-bit word size - 1, four 4-bit
    run-length field sizes - 1, then chunks of ``repeat?(1) size_index(2) length-1`` and
    one value (repeat) or ``length`` literal values. Values are RGBA bytes, row-major.
    """
    bits = _BitReader(bytes(int(v) & 0xFF for v in rle))
    num = bits.read(32)
    if num != height * width * 4:
        raise ValueError(f"brush RLE holds {num} values, expected {height}x{width}x4 = {height * width * 4}")
    word = bits.read(5) + 1
    sizes = [bits.read(4) + 1 for _ in range(4)]
    out = np.zeros(num, dtype=np.uint32)
    i = 0
    while i < num:
        repeat = bits.read(1)
        j = min(num, i + 1 + bits.read(sizes[bits.read(2)]))
        if repeat:
            out[i:j] = bits.read(word)
        else:
            out[i:j] = [bits.read(word) for _ in range(j - i)]
        i = j
    return (out.reshape(height, width, 4)[:, :, 3] > 0).astype(np.uint8)


def encode_brush_rle(mask: np.ndarray) -> list[int]:
    """``(H, W)`` binary mask -> Label Studio brush RLE (RGBA all 255 inside, 0 outside)."""
    flat = np.repeat(np.asarray(mask, dtype=bool).reshape(-1), 4)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change])
    lengths = np.diff(np.concatenate([starts, [flat.size]]))
    sizes = (3, 4, 8, 16)
    parts = [f"{flat.size:032b}", f"{8 - 1:05b}", "".join(f"{s - 1:04b}" for s in sizes)]
    for start, length in zip(starts.tolist(), lengths.tolist(), strict=True):
        value = 255 if flat[start] else 0
        while length > 0:
            take = min(length, 1 << 16)
            idx = next(k for k, s in enumerate(sizes) if take - 1 < (1 << s))
            parts.append(f"1{idx:02b}{take - 1:0{sizes[idx]}b}{value:08b}")
            length -= take
    bits = "".join(parts)
    bits += "0" * (-len(bits) % 8)
    return list(int(bits, 2).to_bytes(len(bits) // 8, "big"))


# ---------------------------------------------------------------- detection


def _looks_like_ls(path: Path) -> float:
    """Confidence that a JSON file is a Label Studio export (full or JSON-min), from its head."""
    head = read_head(path, _HEAD_BYTES).lstrip()
    if not head.startswith((b"[", b"{")):
        return 0.0
    if b'"data"' in head and (b'"annotations"' in head or b'"predictions"' in head or head.startswith(b"[")):
        return 0.95
    if b'"original_width"' in head and (b'labels"' in head or b'"annotation_id"' in head):
        return 0.9  # JSON-min
    return 0.0


def _ls_json_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [p for p in sorted(path.glob("*.json")) if _looks_like_ls(p) > 0]


@register_format
class LabelStudioFormat(AnnotationFormat):
    name = "labelstudio"
    description = "Label Studio JSON export (rectangles, polygons, brush masks; predictions with scores)"
    holds = frozenset({"box", "polygon", "mask", "score"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return _looks_like_ls(path) if path.suffix.lower() == ".json" else 0.0
        return 0.85 if _ls_json_files(path) else 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        files = _ls_json_files(path)
        if not files:
            raise FormatError("no Label Studio JSON export found", "export the project as 'JSON' (a list "
                              "of tasks with data and annotations)", file=str(path))
        recorder = Recorder(options)
        dataset = DatasetRecord(labels=_config_labels(files[0].parent), images=[])
        seen: set[str] = set()
        for file in files:
            for image in _read_file(file, recorder, seen):
                dataset.images.append(image)
        dataset.ensure_labels()
        dataset.skipped = recorder.skipped
        return dataset

    def write(self, dataset: DatasetRecord, out: Path, options: WriteOptions) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        tasks = [_task(i + 1, image) for i, image in enumerate(dataset.images)]
        target = out / "tasks.json"
        tmp = target.with_suffix(".json.tmp")
        with open(tmp, "w") as fh:
            json.dump(tasks, fh)
        tmp.replace(target)
        (out / _CONFIG).write_text(_label_config(dataset), encoding="utf-8")
        for image in dataset.images:
            place_image(image.path, out / "images" / image.file_name, options.images)
        return [target]


# ---------------------------------------------------------------- one task's regions (the ML backend)


def task_image_ref(task: dict[str, Any]) -> str | None:
    """A task's image reference: ``data.image``, else the first value that looks like an image."""
    return _image_ref(task)


def read_regions(results: list[Any], width: int, height: int, *, where: str = "result") -> list[AnnotationRecord]:
    """The annotations of one Label Studio ``result`` list over an image of ``width`` x ``height``
    pixels; a malformed region is a :class:`FormatError` naming it."""
    if not isinstance(results, list):
        raise FormatError(f"expected {where} to be a list of regions, got {type(results).__name__}")
    image = ImageRecord(file_name="task", path=None, width=width, height=height)
    _read_results(results, where, {}, image, Path(where), Recorder(ReadOptions()))
    return image.annotations


def region_results(ann: AnnotationRecord, rid: str, width: int, height: int, *, proposal: bool) -> list[dict[str, Any]]:
    """Label Studio region results (percent coordinates) for one record: one per polygon ring; with a
    ``score`` when it is a proposal. ``from_name``/``to_name`` are this format's defaults."""
    return _regions(ann, rid, width, height, proposal)


# ---------------------------------------------------------------- reading


def _config_labels(folder: Path) -> list[str]:
    """Class names in order from a ``label_config.xml`` beside the export, if there is one."""
    config = folder / _CONFIG
    if not config.is_file():
        return []
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, parse

    try:
        root = parse(str(config), forbid_dtd=True).getroot()
    except (DefusedXmlException, ParseError) as exc:
        raise FormatError(f"invalid labeling config ({type(exc).__name__})", "fix or delete it",
                          file=str(config)) from exc
    if root is None:
        return []
    return list(dict.fromkeys(el.get("value", "") for el in root.iter("Label") if el.get("value")))


def _tasks(doc: Any, file: Path) -> list[Any]:
    """The list of tasks in a document (a single task object is accepted too)."""
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        return [doc]
    if not isinstance(doc, list):
        hint = "is this a COCO file? try --format coco" if isinstance(doc, dict) and "images" in doc else None
        raise FormatError(f"expected a list of Label Studio tasks, got a {type(doc).__name__}", hint,
                          file=str(file))
    return doc


def _read_file(file: Path, recorder: Recorder, seen: set[str]) -> list[ImageRecord]:
    images: list[ImageRecord] = []
    for i, task in enumerate(_tasks(load_json(file), file)):
        record = f"task {task.get('id', i) if isinstance(task, dict) else i}"
        image = _read_task(task, record, file, recorder, seen)
        if image is not None:
            images.append(image)
    return images


def _image_ref(task: dict[str, Any]) -> str | None:
    """The image reference of a task: ``data.image``, else the first value that looks like an image."""
    data: dict[str, Any] = task["data"] if isinstance(task.get("data"), dict) else task
    if isinstance(data.get("image"), str):
        return data["image"]
    for value in data.values():
        if isinstance(value, str) and value.lower().split("?")[0].endswith(_IMAGE_EXT):
            return value
    return None


def _image_name(ref: str, roots: list[Path], file: Path, record: str) -> tuple[str, Path | None]:
    """Map a Label Studio image reference to ``(file_name, path)``."""
    url = urlparse(ref)
    if url.path.startswith("/data/local-files") and "d" in parse_qs(url.query):
        name = parse_qs(url.query)["d"][0]  # (parse_qs decodes it)
    elif url.scheme in ("http", "https", "s3", "gs", "azure-blob") or url.path.startswith("/data/upload"):
        name = unquote(PurePosixPath(url.path).name)  # 'my%20cat.jpg' is the file 'my cat.jpg'
        if url.path.startswith("/data/upload") and _UPLOAD_HASH.match(name):
            found = find_image(name, roots)
            return (name, found) if found else (name[9:], find_image(name[9:], roots))
    else:
        name = ref
    name = safe_relative_name(name, file=file, record=record)
    if name.startswith("images/"):
        name = name[len("images/"):]  # our writer's prefix; the export folder is the document root
    return name, find_image(name, roots)


def _read_task(task: Any, record: str, file: Path, recorder: Recorder, seen: set[str]) -> ImageRecord | None:
    """One task into an ImageRecord with its chosen annotation and all predictions."""
    if not isinstance(task, dict):
        recorder.invalid(file, record, f"expected a task object, got {type(task).__name__}")
        return None
    ref = _image_ref(task)
    if ref is None:
        recorder.invalid(file, record, "no image URL in the task's data", "expected data.image")
        return None
    roots = [file.parent, file.parent / "images"]
    try:
        name, path = _image_name(ref, roots, file, record)
    except FormatError as err:
        recorder.invalid(file, record, err.reason, err.hint)
        return None
    if name in seen:
        recorder.invalid(file, record, f"duplicate image {name!r}", "each image must be one task")
        return None
    seen.add(name)
    image = ImageRecord(file_name=name, path=path)
    for where, results, meta in _result_sets(task, record, file, recorder):
        _read_results(results, where, meta, image, file, recorder)
    if image.width is None:
        image.width, image.height = read_image_size(path)
    return image


def _result_sets(task: dict[str, Any], record: str, file: Path,
                 recorder: Recorder) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """``(record, results, prediction-or-empty)`` for the chosen annotation and every prediction."""
    if "data" not in task:  # JSON-min: regions listed under their control's name
        results = [{**v, "type": _min_type(v), "value": v} for vals in task.values() if isinstance(vals, list)
                   for v in vals if isinstance(v, dict) and _min_type(v)]
        return [(f"{record} regions", results, {})]
    sets: list[tuple[str, list[Any], dict[str, Any]]] = []
    for key in ("annotations", "predictions"):
        if not isinstance(task.get(key) or [], list) or not all(isinstance(a, dict) for a in task.get(key) or []):
            recorder.invalid(file, f"{record} {key}", f"expected a list of {key[:-1]} objects")
            return []
        for k, item in enumerate(task.get(key) or []):
            if not isinstance(item.get("result") or [], list):
                recorder.invalid(file, f"{record} {key}[{k}]", "expected 'result' to be a list of regions")
                return []
    anns = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
    if anns:
        chosen = next((a for a in anns if a.get("ground_truth")), anns[-1])
        k = (task.get("annotations") or []).index(chosen)
        sets.append((f"{record} annotations[{k}]", chosen.get("result") or [], {}))
        if len(anns) > 1:
            recorder.skipped.append(f"{file} [{record}]: {len(anns)} annotations; used annotations[{k}] "
                                    f"(ground truth or latest), ignored the others")
    for k, pred in enumerate(task.get("predictions") or []):
        sets.append((f"{record} predictions[{k}]", pred.get("result") or [], pred))
    return sets


def _min_type(value: dict[str, Any]) -> str | None:
    return next((k for k in ("rectanglelabels", "polygonlabels", "brushlabels", "ellipselabels") if k in value),
                None)


def _read_results(results: list[Any], where: str, prediction: dict[str, Any], image: ImageRecord,
                  file: Path, recorder: Recorder) -> None:
    """Append the regions of one result list to ``image`` (ring groups written by labelloop re-merged)."""
    labels_by_id = {r.get("id"): (r.get("value") or {}).get("labels") for r in results
                    if isinstance(r, dict) and r.get("type") == "labels"}
    groups: dict[str, AnnotationRecord] = {}
    for j, result in enumerate(results):
        record = f"{where}.result[{j}]"
        if not isinstance(result, dict):
            recorder.invalid(file, record, f"expected a result object, got {type(result).__name__}")
            continue
        if not isinstance(result.get("type"), str):
            recorder.invalid(file, record, "expected the region's 'type' (rectanglelabels, polygonlabels, ...)")
            continue
        kind = result["type"].lower()
        if kind in _NON_REGIONS:
            continue
        if kind not in _REGION_TYPES:
            recorder.skipped.append(f"{file} [{record}]: region type {kind!r} is not supported; skipped")
            continue
        _set_size(image, result)
        ann = make_annotation(recorder, file, record,
                              partial(_region, result, kind, labels_by_id, prediction, image))
        if ann is None:
            continue
        ours = result.get("labelloop")
        group = ours.get("group") if isinstance(ours, dict) else None
        if group is not None and group in groups:
            target = groups[group]
            target.polygons = (target.polygons or []) + (ann.polygons or [])
            target.bbox = polygons_bbox(target.polygons)
            continue
        if group is not None:
            groups[group] = ann
        image.annotations.append(ann)


def _set_size(image: ImageRecord, result: dict[str, Any]) -> None:
    """Take the image size from a region's ``original_width``/``original_height`` if still unknown."""
    w, h = result.get("original_width"), result.get("original_height")
    if image.width is None and isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0:
        image.width, image.height = w, h


def _pct(value: Any, name: str) -> float:
    """A percentage, checked to be within 0..100."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"expected {name} as a number (a percentage of the image size), got {value!r}")
    v = float(value)
    if not (-PCT_TOL <= v <= 100.0 + PCT_TOL) or not math.isfinite(v):
        raise ValueError(f"{name}={value!r} is outside 0..100 (Label Studio values are percentages of the "
                         "image size)")
    return v


def _region(result: dict[str, Any], kind: str, labels_by_id: dict[Any, Any], prediction: dict[str, Any],
            image: ImageRecord) -> AnnotationRecord:
    """One region result into a record (raises ValueError if bad)."""
    value = result.get("value")
    if not isinstance(value, dict):
        raise ValueError("expected a 'value' object")
    names = value.get(kind) or value.get("labels") or labels_by_id.get(result.get("id"))
    if not names or not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"region has no label (expected value.{kind} as a list of class names)")
    if image.width is None or image.height is None:
        raise ValueError("expected original_width/original_height (or the image file) to convert percentages")
    extra: dict[str, Any] = dict(result.get("labelloop") or {})
    attributes: dict[str, Any] = dict(extra.get("attributes") or {})
    if len(names) > 1:
        attributes["labels"] = list(names)
    shape = _REGION_TYPES[kind]
    polygons = rle = None
    if shape == "rectangle":
        bbox = _rect(value, image.width, image.height, attributes)
    elif shape == "polygon":
        polygons = [_polygon(value, image.width, image.height)]
        bbox = polygons_bbox(polygons)
    elif shape == "ellipse":
        polygons = [_ellipse(value, image.width, image.height)]
        bbox = polygons_bbox(polygons)
    else:
        rle = _brush(value, image.width, image.height)
        bbox = rle_bbox_xyxy(rle)
    score, source, review = _provenance(result, prediction, extra)
    return AnnotationRecord(label=str(names[0]), bbox=bbox, polygons=polygons, rle=rle,
                            iscrowd=bool(extra.get("iscrowd", False)), score=score, source=source,
                            review_state=review, attributes=attributes)


def _provenance(result: dict[str, Any], prediction: dict[str, Any],
                extra: dict[str, Any]) -> tuple[float | None, str, str | None]:
    """``(score, source, review_state)``: predictions are proposals of their model version."""
    raw = result.get("score", prediction.get("score") if prediction else extra.get("score"))
    score = float(raw) if raw is not None else None
    if prediction:
        version = prediction.get("model_version") or result.get("model_version") or "model"
        return score, str(extra.get("source") or version), extra.get("review_state", "proposed")
    return score, str(extra.get("source") or "human"), extra.get("review_state")


def _rect(value: dict[str, Any], width: int, height: int,
          attributes: dict[str, Any]) -> tuple[float, float, float, float]:
    """Pixel box of a rectangle; a rotated one becomes its enclosing axis-aligned box."""
    x, y = _pct(value["x"], "x"), _pct(value["y"], "y")
    w, h = _pct(value["width"], "width"), _pct(value["height"], "height")
    x1, y1, bw, bh = x * width / 100.0, y * height / 100.0, w * width / 100.0, h * height / 100.0
    angle = float(value.get("rotation") or 0.0)
    if angle % 360.0 == 0.0:
        _pct(x + w, "x + width")
        _pct(y + h, "y + height")
        return (x1, y1, x1 + bw, y1 + bh)
    # Label Studio rotates about the top-left corner, clockwise; keep the enclosing box.
    attributes["source_rotation"] = angle
    a = math.radians(angle)
    corners = [(dx * math.cos(a) - dy * math.sin(a), dx * math.sin(a) + dy * math.cos(a))
               for dx, dy in ((0, 0), (bw, 0), (bw, bh), (0, bh))]
    xs, ys = [x1 + c[0] for c in corners], [y1 + c[1] for c in corners]
    return (min(xs), min(ys), max(xs), max(ys))


def _polygon(value: dict[str, Any], width: int, height: int) -> list[float]:
    """Flat ring in pixels from percent points."""
    points = value.get("points")
    if not isinstance(points, list) or len(points) < 3:
        raise ValueError("expected value.points as >= 3 [x, y] pairs in percent")
    ring: list[float] = []
    for k, point in enumerate(points):
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise ValueError(f"expected value.points[{k}] as an [x, y] pair in percent, got {point!r}")
        ring += [_pct(point[0], f"points[{k}].x") * width / 100.0, _pct(point[1], f"points[{k}].y") * height / 100.0]
    return ring


def _ellipse(value: dict[str, Any], width: int, height: int) -> list[float]:
    cx, cy = _pct(value["x"], "x") * width / 100.0, _pct(value["y"], "y") * height / 100.0
    rx, ry = float(value["radiusX"]) * width / 100.0, float(value["radiusY"]) * height / 100.0
    return ellipse_to_polygon(cx, cy, rx, ry, math.radians(float(value.get("rotation") or 0.0)))


def _brush(value: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """A brush region into a full-image COCO RLE."""
    if value.get("format", "rle") != "rle" or not isinstance(value.get("rle"), list):
        raise ValueError("expected a brush region with format 'rle' and an 'rle' list of bytes")
    mask = decode_brush_rle(value["rle"], height, width)
    if not mask.any():
        raise ValueError("brush mask is empty")
    return mask_to_rle(mask)


# ---------------------------------------------------------------- writing


def _image_url(file_name: str) -> str:
    return "/data/local-files/?d=" + quote(f"images/{file_name}", safe="/")


def _is_proposal(ann: AnnotationRecord) -> bool:
    return ann.source != "human" and ann.review_state not in ("accepted", "edited")


def _task(task_id: int, image: ImageRecord) -> dict[str, Any]:
    """One image as a Label Studio task with its annotations and predictions."""
    width, height = image.width, image.height
    if width is None or height is None:
        width, height = read_image_size(image.path)
    if width is None or height is None:
        raise FormatError(f"image {image.file_name!r} has no width/height and its file was not found",
                          "Label Studio stores percentages of the image size; import with the images")
    human: list[dict[str, Any]] = []
    predictions: dict[str, list[dict[str, Any]]] = {}
    scores: dict[str, list[float]] = {}
    for n, ann in enumerate(image.annotations):
        proposal = _is_proposal(ann)
        regions = _regions(ann, f"{task_id}-{n}", width, height, proposal)
        if proposal:
            predictions.setdefault(ann.source, []).extend(regions)
            scores.setdefault(ann.source, []).append(ann.score if ann.score is not None else 1.0)
        else:
            human.extend(regions)
    task: dict[str, Any] = {"id": task_id, "data": {"image": _image_url(image.file_name)},
                            "annotations": [{"result": human, "ground_truth": False}] if human else [],
                            "predictions": [{"model_version": v, "score": float(np.mean(scores[v])), "result": r}
                                            for v, r in predictions.items()]}
    return task


def _extras(ann: AnnotationRecord, proposal: bool) -> dict[str, Any]:
    """What Label Studio has no field for, carried in the region's ``labelloop`` key."""
    extra: dict[str, Any] = {}
    if not proposal and ann.source != "human":
        extra["source"] = ann.source
    if ann.review_state and ann.review_state != ("proposed" if proposal else None):
        extra["review_state"] = ann.review_state
    if not proposal and ann.score is not None:
        extra["score"] = ann.score
    if ann.iscrowd:
        extra["iscrowd"] = True
    if ann.attributes:
        extra["attributes"] = ann.attributes
    return extra


def _clip_pct(v: float, size: int) -> float:
    return min(100.0, max(0.0, v / size * 100.0))


def _regions(ann: AnnotationRecord, rid: str, width: int, height: int, proposal: bool) -> list[dict[str, Any]]:
    """Region results for one record (one per polygon ring)."""
    base: dict[str, Any] = {"from_name": "label", "to_name": "image", "original_width": width,
                            "original_height": height, "image_rotation": 0}
    if proposal and ann.score is not None:
        base["score"] = ann.score
    extra = _extras(ann, proposal)
    out: list[dict[str, Any]] = []
    if ann.rle is not None:
        value: dict[str, Any] = {"format": "rle", "rle": encode_brush_rle(rle_to_mask(ann.rle)),
                                 "brushlabels": [ann.label]}
        out.append({**base, "id": rid, "type": "brushlabels", "from_name": "brush", "value": value})
    elif ann.polygons:
        if len(ann.polygons) > 1:
            extra = {**extra, "group": rid}
        for k, ring in enumerate(ann.polygons):
            points = [[_clip_pct(ring[i], width), _clip_pct(ring[i + 1], height)] for i in range(0, len(ring), 2)]
            out.append({**base, "id": f"{rid}-{k}" if k else rid, "type": "polygonlabels",
                        "from_name": "polygon", "value": {"points": points, "closed": True,
                                                          "polygonlabels": [ann.label]}})
    else:
        x1, y1 = _clip_pct(ann.bbox[0], width), _clip_pct(ann.bbox[1], height)
        x2, y2 = _clip_pct(ann.bbox[2], width), _clip_pct(ann.bbox[3], height)
        out.append({**base, "id": rid, "type": "rectanglelabels",
                    "value": {"x": x1, "y": y1, "width": x2 - x1, "height": y2 - y1, "rotation": 0,
                              "rectanglelabels": [ann.label]}})
    if extra:
        for region in out:
            region["labelloop"] = extra
    return out


def _label_config(dataset: DatasetRecord) -> str:
    """A labeling config with rectangle, polygon and brush tools over the classes, in order."""
    from xml.sax.saxutils import quoteattr

    names = list(dict.fromkeys(dataset.labels + [a.label for i in dataset.images for a in i.annotations]))
    labels = "".join(f"\n    <Label value={quoteattr(n)}/>" for n in names)
    tools = [("RectangleLabels", "label"), ("PolygonLabels", "polygon"), ("BrushLabels", "brush")]
    body = "".join(f'\n  <{tag} name="{name}" toName="image">{labels}\n  </{tag}>' for tag, name in tools)
    return f'<View>\n  <Image name="image" value="$image"/>{body}\n</View>\n'
