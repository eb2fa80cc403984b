"""COCO instances JSON: boxes, polygons and RLE masks (compressed or uncompressed, iscrowd).

Model proposals keep ``score``, ``source`` and ``review_state`` as extra keys on the
annotation (COCO readers ignore unknown keys; COCO results files use ``score`` too).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ImageFinder,
    ReadOptions,
    Recorder,
    WriteOptions,
    load_json,
    make_annotation,
    place_image,
    register_format,
    safe_relative_name,
)

__all__ = ["CocoFormat"]


def _coco_json_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    found = sorted(path.glob("annotations/*.json")) + sorted(path.glob("*.json"))
    return [p for p in found if _looks_like_coco(p)]


def _looks_like_coco(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return b'"images"' in head or (b'"annotations"' in head and b'"categories"' in head) or (
        path.stat().st_size > 4096 and b'"info"' in head)


@register_format
class CocoFormat(AnnotationFormat):
    name = "coco"
    description = "COCO instances JSON (boxes, polygons, RLE masks)"
    holds = frozenset({"box", "polygon", "mask", "score"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return 0.9 if path.suffix.lower() == ".json" and _looks_like_coco(path) else 0.0
        return 0.8 if _coco_json_files(path) else 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        files = _coco_json_files(path)
        if not files:
            raise FormatError("no COCO JSON file found", "expected annotations/*.json with images, "
                              "annotations and categories", file=str(path))
        recorder = Recorder(options)
        merged = DatasetRecord(labels=[], images=[])
        for file in files:
            split = _split_from_name(file) if len(files) > 1 else None
            part = _read_file(file, recorder, split)
            for label in part.labels:
                if label not in merged.labels:
                    merged.labels.append(label)
            merged.images.extend(part.images)
        merged.skipped = recorder.skipped
        return merged

    def write(self, dataset: DatasetRecord, out: Path, options: WriteOptions) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        doc = _to_coco(dataset)
        target = out / "annotations.json"
        tmp = target.with_suffix(".json.tmp")
        with open(tmp, "w") as fh:
            json.dump(doc, fh, separators=(",", ":"))
        tmp.replace(target)
        for image in dataset.images:
            place_image(image.path, out / "images" / image.file_name, options.images)
        return [target]


def _split_from_name(file: Path) -> str | None:
    stem = file.stem.lower()
    for key, split in (("train", "train"), ("val", "val"), ("test", "test")):
        if key in stem:
            return split
    return None


def _expect(doc: Any, key: str, kind: type, file: Path, *, required: str | None = None) -> Any:
    """``doc[key]``, checked to be a ``kind``; absent, an empty one, unless ``required`` (what it should hold)."""
    if required and isinstance(doc, dict) and key not in doc:
        raise FormatError(f"expected COCO {key!r} ({required}), found no such key",
                          "is this a results file? labelloop imports datasets: images, categories, annotations",
                          file=str(file))
    value = doc.get(key, [] if kind is list else None)
    if not isinstance(value, kind):
        hint = "is this a Label Studio export? try --format labelstudio" if isinstance(doc, dict) else None
        raise FormatError(f"expected COCO {key!r} to be a {kind.__name__}, got {type(value).__name__}", hint,
                          file=str(file))
    return value


def _read_file(file: Path, recorder: Recorder, split: str | None) -> DatasetRecord:
    doc = load_json(file)
    if not isinstance(doc, dict):
        raise FormatError(f"expected a COCO JSON object, got a {type(doc).__name__}",
                          "is this a Label Studio export? try --format labelstudio", file=str(file))
    categories = _expect(doc, "categories", list, file)
    images = _expect(doc, "images", list, file, required="a list of {id, file_name, width, height}")
    annotations = _expect(doc, "annotations", list, file)
    names: dict[Any, str] = {}
    for i, cat in enumerate(categories):
        if not isinstance(cat, dict) or not _is_id(cat.get("id")) or not isinstance(cat.get("name"), str | int) \
                or not str(cat["name"]).strip():
            raise FormatError("category needs an id (a number or a string) and a name", file=str(file),
                              record=f"categories[{i}]")
        names[cat["id"]] = str(cat["name"])
    roots = [file.parent, file.parent / "images", file.parent.parent, file.parent.parent / "images"]
    roots += [file.parent.parent / d for d in _image_dir_guesses(file)]
    finder = ImageFinder(roots)
    by_id: dict[Any, ImageRecord] = {}
    seen_names: set[str] = set()
    for i, img in enumerate(images):
        rec = _read_image(img, i, file, recorder, finder, seen_names, split)
        if rec is not None and not _is_id(img.get("id")):
            recorder.invalid(file, f"images[{i}]", f"image id {img.get('id')!r}: expected a number or a string")
        elif rec is not None and img["id"] in by_id:
            recorder.invalid(file, f"images[{i}]",
                             f"duplicate image id {img['id']!r} (also {by_id[img['id']].file_name!r})",
                             "each image needs its own id: annotations find their image by it")
        elif rec is not None:
            by_id[img["id"]] = rec
    for i, ann in enumerate(annotations):
        _read_annotation(ann, i, file, recorder, names, by_id)
    labels = [str(c["name"]) for c in categories]
    return DatasetRecord(labels=list(dict.fromkeys(labels)), images=list(by_id.values()))


def _is_id(value: Any) -> bool:
    """COCO ids are numbers; some tools write strings. Lists, objects and booleans are not ids."""
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def _image_dir_guesses(file: Path) -> list[str]:
    stem = file.stem
    guesses = [stem]
    if stem.startswith("instances_"):
        guesses.append(stem[len("instances_"):])
    return guesses


def _read_image(img: Any, i: int, file: Path, recorder: Recorder, finder: ImageFinder,
                seen: set[str], split: str | None) -> ImageRecord | None:
    record = f"images[{i}]"
    if not isinstance(img, dict) or "id" not in img or "file_name" not in img:
        recorder.invalid(file, record, "image needs an id and a file_name")
        return None
    try:
        name = safe_relative_name(str(img["file_name"]), file=file, record=record)
    except FormatError as err:
        recorder.invalid(file, record, err.reason, err.hint)
        return None
    if name in seen:
        recorder.invalid(file, record, f"duplicate file name {name!r}", "each image must appear once")
        return None
    seen.add(name)
    width, height = img.get("width"), img.get("height")
    if width is not None and (not isinstance(width, int) or not isinstance(height, int)
                              or width <= 0 or height <= 0):
        recorder.invalid(file, record, f"expected positive integer width/height, got {width!r}x{height!r}")
        return None
    return ImageRecord(file_name=name, width=width, height=height, path=finder.find(name), split=split)


def _read_annotation(ann: Any, i: int, file: Path, recorder: Recorder, names: dict[Any, str],
                     by_id: dict[Any, ImageRecord]) -> None:
    record = f"annotations[{i}]"
    if not isinstance(ann, dict):
        recorder.invalid(file, record, f"expected an object, got {type(ann).__name__}")
        return
    image = by_id.get(ann.get("image_id")) if _is_id(ann.get("image_id")) else None
    if image is None:
        recorder.invalid(file, record, f"unknown image_id {ann.get('image_id')!r}")
        return
    if not _is_id(ann.get("category_id")) or ann.get("category_id") not in names:
        recorder.invalid(file, record, f"unknown category_id {ann.get('category_id')!r}",
                         f"known ids: {sorted(names, key=str)[:20]}")
        return
    rec = make_annotation(recorder, file, record, lambda: _annotation(ann, names[ann["category_id"]], image))
    if rec is not None:
        image.annotations.append(rec)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _polygons(seg: list[Any]) -> list[list[float]]:
    if seg and all(_number(v) for v in seg):  # one flat ring [x1, y1, ...]: some tools write it so
        seg = [seg]
    if not all(isinstance(ring, list) and all(_number(v) for v in ring) for ring in seg):
        raise ValueError("expected segmentation polygons as lists of numbers [[x1, y1, x2, y2, ...], ...]")
    return [[float(v) for v in ring] for ring in seg]


def _annotation(ann: dict[str, Any], label: str, image: ImageRecord) -> AnnotationRecord:
    seg = ann.get("segmentation")
    polygons = rle = None
    if seg:
        if isinstance(seg, list):
            polygons = _polygons(seg)
        elif isinstance(seg, dict):
            rle = _normalise_rle(seg, image)
        else:
            raise ValueError(f"expected segmentation as polygons [[x, y, ...]] or an RLE {{size, counts}}, "
                             f"got {type(seg).__name__}")
    bbox = ann.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(_number(v) for v in bbox):
        raise ValueError(f"expected bbox [x, y, w, h] as 4 numbers, got {bbox!r}")
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        raise ValueError(f"bbox [x, y, w, h] has zero or negative area (w={w}, h={h}): expected a positive width "
                         "and height")
    score, attributes = ann.get("score"), ann.get("attributes")
    if score is not None and not _number(score):
        raise ValueError(f"expected score as a number in [0, 1], got {score!r}")
    if attributes is not None and not isinstance(attributes, dict):
        raise ValueError(f"expected attributes as an object {{name: value}}, got {type(attributes).__name__}")
    return AnnotationRecord(
        label=label, bbox=(x, y, x + w, y + h), polygons=polygons, rle=rle, iscrowd=bool(ann.get("iscrowd")),
        score=None if score is None else float(score), source=ann.get("source") or "human",
        review_state=ann.get("review_state"), attributes=dict(attributes) if attributes else {},
    )


def _normalise_rle(seg: dict[str, Any], image: ImageRecord) -> dict[str, Any]:
    size = seg.get("size")
    if not isinstance(size, list) or len(size) != 2:
        raise ValueError(f"expected RLE size [h, w], got {size!r}")
    if image.height is not None and (size[0] != image.height or size[1] != image.width):
        raise ValueError(f"RLE size {size} does not match image {image.width}x{image.height} (h, w expected)")
    counts = seg.get("counts")
    if isinstance(counts, list):
        from labelloop.core.geometry import check_rle, mask_to_rle, rle_to_mask

        check_rle(seg, size[0], size[1])  # the runs must cover the image: pycocotools would pad or cut them
        return mask_to_rle(rle_to_mask({"size": size, "counts": counts}))
    if not isinstance(counts, str):
        raise ValueError("expected RLE counts as a string or a list of ints")
    return {"size": [int(size[0]), int(size[1])], "counts": counts}


def _to_coco(dataset: DatasetRecord) -> dict[str, Any]:
    cat_ids = {name: i + 1 for i, name in enumerate(dataset.labels)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for img_id, image in enumerate(dataset.images, start=1):
        images.append({"id": img_id, "file_name": image.file_name, "width": image.width,
                       "height": image.height})
        for ann in image.annotations:
            annotations.append(_coco_annotation(ann, len(annotations) + 1, img_id, cat_ids[ann.label]))
    return {
        "info": {"description": "exported by labelloop"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": n, "supercategory": ""} for n, i in cat_ids.items()],
    }


def _coco_annotation(ann: AnnotationRecord, ann_id: int, img_id: int, cat_id: int) -> dict[str, Any]:
    from labelloop.core.geometry import polygon_area, rle_area

    x1, y1, x2, y2 = ann.bbox
    out: dict[str, Any] = {"id": ann_id, "image_id": img_id, "category_id": cat_id,
                           "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(ann.iscrowd)}
    if ann.rle is not None:
        out["segmentation"] = ann.rle
        out["area"] = rle_area(ann.rle)
    elif ann.polygons:
        out["segmentation"] = ann.polygons
        out["area"] = sum(polygon_area(p) for p in ann.polygons)
    else:
        out["segmentation"] = []
        out["area"] = (x2 - x1) * (y2 - y1)
    if ann.score is not None:
        out["score"] = ann.score
    if ann.source != "human":
        out["source"] = ann.source
    if ann.review_state:
        out["review_state"] = ann.review_state
    if ann.attributes:
        out["attributes"] = ann.attributes
    return out
