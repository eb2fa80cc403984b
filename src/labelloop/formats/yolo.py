"""YOLO txt labels, detect and segment, in the Darknet and the Ultralytics layouts.

One ``.txt`` per image, one object per line, coordinates normalised to ``[0, 1]`` by
the image size (so the image files are needed to read it back into pixels):

* detect: ``class cx cy w h``
* segment: ``class x1 y1 x2 y2 x3 y3 ...`` (one polygon per line)
* either may carry a trailing confidence column (Ultralytics ``save_conf``). It is read
  into ``score`` (``source="model"``, ``review_state="proposed"``); it is written only
  when ``WriteOptions.include_proposals`` is true (``--include-proposals``), because
  Darknet readers refuse the extra column.

Layouts read: Ultralytics (``data.yaml`` with ``names`` as a list or a dict and
``train``/``val``/``test`` image folders or list files; labels in the parallel
``labels/`` folders; Roboflow's ``../train/images`` spelling too) and Darknet / CVAT
YOLO 1.1 / LabelImg (``obj.names`` or ``classes.txt``; labels next to the images, e.g.
``obj_train_data/``). ``ImageRecord.split`` comes from the split folder.

Layout written: ``images/<split>/`` + ``labels/<split>/`` (split None -> ``train``),
``data.yaml`` for Ultralytics, and ``obj.names`` + ``obj.data`` + ``<split>.txt`` lists
for Darknet. ``WriteOptions.task == "segment"`` writes polygons (RLE masks are traced
with :func:`~labelloop.core.geometry.mask_to_polygons`; holes are dropped, several
parts are joined by zero-width bridges as Ultralytics does) and writes plain boxes as
rectangles listed corner by corner *down first* ``(x1 y1, x1 y2, x2 y2, x2 y1)``; that
exact pattern reads back as a box. Any other task writes boxes only. Coordinates are
written with 12 decimals, so import -> export -> import is exact to ~1e-9 px, and
shapes are clipped to the image (YOLO cannot hold coordinates outside it).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from labelloop.core.geometry import EDGE_SLACK, mask_to_polygons, polygon_area, polygons_bbox, rle_to_mask
from labelloop.core.records import IMAGE_EXTENSIONS, AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import ConfigError, FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ReadOptions,
    Recorder,
    WriteOptions,
    image_header_size,
    place_image,
    register_format,
    safe_relative_name,
)

__all__ = ["YoloFormat"]

YAML_NAMES = ("data.yaml", "dataset.yaml", "data.yml", "dataset.yml")
NAMES_FILES = ("obj.names", "classes.txt", "classes.names")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
#: data.yaml keys that never name an image folder
_META_KEYS = frozenset({"path", "names", "nc", "download", "kpt_shape", "flip_idx", "channels"})
_EPS = 1e-6  # tolerance on [0, 1] for normalised coordinates written by other tools
_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class _Source:
    """Where one split's images are, and where its labels are looked for."""

    split: str | None
    images: Path  # file names are relative to this folder
    labels: Path | None  # parallel labels folder, or None for labels next to the images
    files: tuple[Path, ...] | None = None  # explicit image list (a list .txt); None = scan ``images``


@dataclass(frozen=True)
class _Layout:
    root: Path
    names: dict[int, str]
    sources: tuple[_Source, ...]


@register_format
class YoloFormat(AnnotationFormat):
    name = "yolo"
    description = "YOLO txt (Darknet and Ultralytics layouts; detect and segment)"
    holds = frozenset({"box", "polygon", "score"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return 0.85 if path.name in YAML_NAMES or path.name in ("obj.names", "obj.data") else 0.0
        if any((path / n).is_file() for n in YAML_NAMES):
            return 0.9
        if (path / "obj.names").is_file() or (path / "obj.data").is_file():
            return 0.85
        if any((path / n).is_file() for n in NAMES_FILES) and _has_label_files(path):
            return 0.7
        return 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        layout = _find_layout(path)
        recorder = Recorder(options)
        images: list[ImageRecord] = []
        seen: dict[str, Path] = {}
        used_labels: set[Path] = set()
        for source in layout.sources:
            for image_path, file_name in _iter_images(source):
                if file_name in seen:
                    # the same file listed in two splits (val = train) is read once
                    if not os.path.samefile(seen[file_name], image_path):
                        recorder.invalid(image_path, "image", f"duplicate file name {file_name!r} in two "
                                         "splits", "each image must appear once; rename one of them")
                    continue
                seen[file_name] = image_path
                label = _label_path(image_path, file_name, source)
                if label is not None:
                    used_labels.add(label)
                image = _read_image(image_path, file_name, label, source.split, layout.names, recorder)
                if image is not None:
                    images.append(image)
        _report_orphan_labels(layout, used_labels, recorder)
        labels = list(dict.fromkeys(layout.names[k] for k in sorted(layout.names)))
        segment = any(a.kind == "polygon" for i in images for a in i.annotations)
        return DatasetRecord(labels=labels, images=images, task="segment" if segment else "detect",
                             skipped=recorder.skipped)

    def write(self, dataset: DatasetRecord, out: Path, options: WriteOptions) -> list[Path]:
        out.mkdir(parents=True, exist_ok=True)
        labels = _all_labels(dataset)
        index = {name: i for i, name in enumerate(labels)}
        segment = options.task in ("segment", "seg")
        with_scores = bool(getattr(options, "include_proposals", False))
        written: list[Path] = []
        lists: dict[str, list[str]] = {}
        for image in dataset.images:
            split = _write_split(image.split)
            name = safe_relative_name(image.file_name, file=out, record=image.file_name)
            width, height = _known_size(image)
            lines = [_format_line(a, index[a.label], width, height, segment, with_scores)
                     for a in image.annotations]
            target = out / "labels" / split / PurePosixPath(name).with_suffix(".txt")
            _write_text(target, "".join(line + "\n" for line in lines if line is not None))
            written.append(target)
            place_image(image.path, out / "images" / split / name, options.images)
            lists.setdefault(split, []).append(f"images/{split}/{name}")
        written += _write_metadata(out, labels, lists)
        return written


# ---------------------------------------------------------------- layout


def _find_layout(path: Path) -> _Layout:
    if not path.exists():
        raise FormatError(f"no such file or folder: {path}", "check the path")
    if path.is_file():
        if path.suffix.lower() in (".yaml", ".yml"):
            return _yaml_layout(path)
        path = path.parent
    for name in YAML_NAMES:
        if (path / name).is_file():
            return _yaml_layout(path / name)
    names_file = next((path / n for n in NAMES_FILES if (path / n).is_file()), None)
    if names_file is None:
        names_file = _names_from_obj_data(path)
    if names_file is None:
        raise FormatError("no data.yaml, obj.names or classes.txt found",
                          "a YOLO dataset needs its class names: data.yaml (Ultralytics) or "
                          "obj.names / classes.txt (Darknet)", file=str(path))
    return _Layout(path, _read_names_file(names_file), tuple(_scan_sources(path)))


def _names_from_obj_data(root: Path) -> Path | None:
    """The ``names = ...`` file an ``obj.data`` points at (Darknet writes ``data/obj.names``)."""
    data = root / "obj.data"
    if not data.is_file():
        return None
    for line in data.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "names" and value.strip():
            rel = PurePosixPath(value.strip().replace("\\", "/"))
            for candidate in (root / rel, root / rel.name):
                if _inside(candidate, root) and candidate.is_file():
                    return candidate
    return None


def _read_names_file(path: Path) -> dict[int, str]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read class names: {exc}", file=str(path)) from exc
    while lines and not lines[-1].strip():
        lines.pop()
    names: dict[int, str] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            raise FormatError("empty class name", "one class name per line, no blank lines in between "
                              "(the line number is the class index + 1)", file=str(path),
                              record=f"line {i + 1}")
        names[i] = line.strip()
    if not names:
        raise FormatError("no class names", "list one class name per line", file=str(path))
    return names


#: a data.yaml is a few hundred bytes; anything this big is not one
MAX_YAML_BYTES = 1_000_000


def _loader() -> Any:
    """PyYAML's safe loader without aliases: ``*name`` lets a few hundred bytes expand to gigabytes
    ("billion laughs"), and a dataset file has no use for it."""
    import yaml

    class NoAliases(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                raise yaml.composer.ComposerError(None, None, "YAML aliases (*name) are not allowed in a dataset "
                                                  "file", self.peek_event().start_mark)
            return super().compose_node(parent, index)

    return NoAliases


def _load_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise FormatError(f"{path.stat().st_size} bytes is too big for a data.yaml (limit {MAX_YAML_BYTES})",
                              "is this the right file?", file=str(path))
        doc = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_loader())  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise FormatError(f"invalid YAML{where}: {getattr(exc, 'problem', exc)}",
                          "is the file complete?", file=str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"cannot read: {exc}", file=str(path)) from exc
    if not isinstance(doc, dict):
        raise FormatError(f"expected a YAML mapping with names/train/val, got {type(doc).__name__}",
                          file=str(path))
    return doc


def _parse_names(doc: dict[str, Any], file: Path) -> dict[int, str]:
    raw = doc.get("names")
    if raw is None:
        sibling = next((file.parent / n for n in NAMES_FILES if (file.parent / n).is_file()), None)
        if sibling is None:
            raise FormatError("data.yaml has no 'names'", "add names: [class0, class1, ...]", file=str(file))
        return _read_names_file(sibling)
    if isinstance(raw, list):
        items = list(enumerate(raw))
    elif isinstance(raw, dict):
        try:
            items = [(int(k), v) for k, v in raw.items()]
        except (TypeError, ValueError) as exc:
            raise FormatError(f"expected integer class ids as 'names' keys, got {list(raw)[:5]}",
                              file=str(file), record="names") from exc
    else:
        raise FormatError(f"expected 'names' to be a list or a dict, got {type(raw).__name__}",
                          file=str(file), record="names")
    if any(not isinstance(v, str | int | float) or isinstance(v, bool) for _, v in items):
        raise FormatError("class names must be plain text", "names: [cell, debris] or names: {0: cell, 1: debris}",
                          file=str(file), record="names")
    names = {k: str(v).strip() for k, v in items}
    if not names or any(not v for v in names.values()):
        raise FormatError("class names must be non-empty", file=str(file), record="names")
    nc = doc.get("nc")
    if nc is not None and nc != len(names):
        raise FormatError(f"nc is {nc} but {len(names)} names are listed", "make nc match names, or drop nc",
                          file=str(file), record="nc")
    return names


def _yaml_layout(file: Path) -> _Layout:
    doc = _load_yaml(file)
    names = _parse_names(doc, file)
    root = file.parent
    base = _dataset_base(doc.get("path"), root)
    sources: list[_Source] = []
    seen: set[Path] = set()
    missing: list[str] = []
    for key, value in doc.items():
        if key in _META_KEYS or not isinstance(value, str | list):
            continue
        if key not in SPLIT_ALIASES and not (isinstance(value, str) and value.startswith("images/")):
            continue
        for entry in value if isinstance(value, list) else [value]:
            source = _yaml_source(str(entry), str(key), base, root, file)
            if source is None:
                missing.append(f"{key!r} points to {entry!r}")
            elif source.files or source.images not in seen:
                seen.add(source.images)
                sources.append(source)
    if not sources and missing:  # (one missing split of several, e.g. an empty 'test', is fine)
        raise FormatError(f"the splits data.yaml names do not exist under {base}: {'; '.join(missing)}",
                          "fix the paths in data.yaml (relative to its folder), or remove them to import every "
                          "image under the folder", file=str(file))
    if not sources:
        sources = _scan_sources(root)
    return _Layout(root, names, tuple(sources))


def _dataset_base(path_value: Any, root: Path) -> Path:
    """The ``path:`` of data.yaml when it is a folder inside the dataset, else the yaml's folder.

    Ultralytics resolves ``path`` against its own datasets folder; after a move it rarely
    points anywhere useful, so the folder holding data.yaml is the reliable base."""
    if isinstance(path_value, str) and path_value.strip():
        candidate = Path(os.path.abspath(root / path_value))
        if _inside(candidate, root) and candidate.is_dir():
            return candidate
    return root


def _yaml_source(entry: str, key: str, base: Path, root: Path, file: Path) -> _Source | None:
    split = SPLIT_ALIASES.get(key, key)
    target = Path(os.path.abspath(base / entry))
    if not target.exists() and entry.startswith("../"):  # Roboflow: '../train/images' means 'train/images'
        target = Path(os.path.abspath(base / entry[3:]))
    if not _inside(target, root):
        raise FormatError(f"{key!r} points outside the dataset folder: {entry!r}",
                          "keep data.yaml in the dataset folder and use paths relative to it",
                          file=str(file), record=key)
    if target.is_dir():
        return _Source(split, target, _parallel_labels(target))
    if target.is_file() and target.suffix.lower() == ".txt":
        return _Source(split, base, None, tuple(_read_image_list(target, base, root)))
    return None


def _read_image_list(list_file: Path, base: Path, root: Path) -> Iterator[Path]:
    for n, line in enumerate(list_file.read_text(encoding="utf-8-sig", errors="replace").splitlines(), start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        image = Path(os.path.abspath(base / entry))
        if not _inside(image, root):
            raise FormatError(f"image path points outside the dataset folder: {entry!r}",
                              "list images relative to the dataset folder", file=str(list_file),
                              record=f"line {n}")
        yield image


def _parallel_labels(images_dir: Path) -> Path | None:
    """``.../images/train`` -> ``.../labels/train`` (the last ``images`` part), if that folder exists."""
    parts = list(images_dir.parts)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i].lower() == "images":
            parts[i] = "labels"
            candidate = Path(*parts)
            return candidate if candidate.is_dir() else None
    return None


def _scan_sources(root: Path) -> list[_Source]:
    """Split folders without a data.yaml: CVAT ``obj_<split>_data``, ``images/<split>``,
    Roboflow ``<split>/images``, a flat ``images/``, or the folder itself."""
    sources: list[_Source] = []
    for folder in sorted(root.glob("obj_*_data")):
        if folder.is_dir():
            word = folder.name[len("obj_"):-len("_data")]
            sources.append(_Source(SPLIT_ALIASES.get(word, word), folder, None))
    for key, split in SPLIT_ALIASES.items():
        for folder in (root / "images" / key, root / key / "images"):
            if folder.is_dir():
                sources.append(_Source(split, folder, _parallel_labels(folder)))
    if not sources and (root / "images").is_dir():
        sources.append(_Source(None, root / "images", _parallel_labels(root / "images")))
    return sources or [_Source(None, root, None)]


def _has_label_files(root: Path) -> bool:
    dirs = [root, root / "labels", *sorted(root.glob("obj_*_data"))]
    for folder in dirs:
        if any(p.name not in NAMES_FILES for p in folder.glob("*.txt")):
            return True
    return (root / "labels").is_dir()


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` is ``root`` or below it, by name (symlinks inside the dataset are allowed)."""
    try:
        Path(os.path.abspath(path)).relative_to(os.path.abspath(root))
    except ValueError:
        return False
    return True


def _iter_images(source: _Source) -> Iterator[tuple[Path, str]]:
    """``(path, file name relative to the split folder)`` of each image, sorted."""
    if source.files is not None:
        for image in source.files:
            yield image, _relative_name(image, source.images)
        return
    for image in sorted(source.images.rglob("*")):
        if image.suffix.lower() in IMAGE_EXTENSIONS and image.is_file():
            yield image, image.relative_to(source.images).as_posix()


def _relative_name(image: Path, base: Path) -> str:
    rel = os.path.relpath(os.path.abspath(image), os.path.abspath(base))
    parts = PurePosixPath(rel.replace(os.sep, "/")).parts
    if parts and parts[0] == "images" and len(parts) > 2:  # images/<split>/x.jpg -> x.jpg
        parts = parts[2:]
    return "/".join(parts)


def _label_path(image: Path, file_name: str, source: _Source) -> Path | None:
    candidates = []
    if source.labels is not None:
        candidates.append(source.labels / PurePosixPath(file_name).with_suffix(".txt"))
    parallel = _parallel_labels(image.parent)
    if parallel is not None:
        candidates.append(parallel / (image.stem + ".txt"))
    candidates.append(image.with_suffix(".txt"))
    return next((c for c in candidates if c.is_file()), None)


def _report_orphan_labels(layout: _Layout, used: set[Path], recorder: Recorder) -> None:
    """Label files in label folders that no image claimed (e.g. a CVAT export without images)."""
    folders = {s.labels for s in layout.sources if s.labels is not None}
    folders |= {s.images for s in layout.sources if s.images.name.startswith("obj_")}
    for folder in sorted(folders):
        for label in sorted(folder.rglob("*.txt")):
            if label not in used and label.name not in NAMES_FILES:
                recorder.invalid(label, "file", "no image for this label file",
                                 "YOLO coordinates are normalised by the image size, so the image is needed: "
                                 "put it next to the label file or in the parallel images/ folder")


# ---------------------------------------------------------------- reading


class _LineError(ValueError):
    """A bad label line, with a hint on how to fix it."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


def _read_image(path: Path, file_name: str, label: Path | None, split: str | None, names: dict[int, str],
                recorder: Recorder) -> ImageRecord | None:
    from PIL import Image

    try:
        width, height = image_header_size(path)
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        recorder.invalid(path, "image", f"cannot read the image size: {exc}",
                         "YOLO needs the image to turn normalised coordinates into pixels")
        return None
    image = ImageRecord(file_name=file_name, width=width, height=height, path=path, split=split)
    if label is not None:
        _read_label_file(label, image, names, recorder)
    return image


def _read_label_file(label: Path, image: ImageRecord, names: dict[int, str], recorder: Recorder) -> None:
    try:
        text = label.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        recorder.invalid(label, "file", f"cannot read label file: {exc}", "is this a YOLO .txt label file?")
        return
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            image.annotations.append(_parse_line(line, names, image.width or 0, image.height or 0))
        except _LineError as exc:
            recorder.invalid(label, f"line {n}", str(exc), exc.hint)
        except ValueError as exc:
            recorder.invalid(label, f"line {n}", str(exc))


def _parse_line(line: str, names: dict[int, str], width: int, height: int) -> AnnotationRecord:
    """One label line -> a record in pixels; raises ``_LineError`` saying what was expected."""
    parts = line.split()
    label = _class_name(parts[0], names)
    values = [_number(v) for v in parts[1:]]
    score: float | None = None
    if len(values) in (4, 5):
        score = values[4] if len(values) == 5 else None
        ann = _box_record(values[:4], width, height)
    elif len(values) >= 6:
        if len(values) % 2:
            score = values[-1]
            values = values[:-1]
        ann = _polygon_record(values, width, height)
    else:
        raise _LineError("expected 'class cx cy w h [conf]' (detect) or "
                         f"'class x1 y1 x2 y2 x3 y3 ... [conf]' (segment), got {len(values)} numbers "
                         "after the class index")
    if score is not None and not 0.0 <= score <= 1.0:
        raise _LineError(f"expected a confidence in [0, 1] in the last column, got {score!r}")
    ann.label = label
    if score is not None:
        ann.score, ann.source, ann.review_state = score, "model", "proposed"
    return ann


def _class_name(text: str, names: dict[int, str]) -> str:
    try:
        value = float(text)
    except ValueError:
        raise _LineError(f"expected an integer class index first, got {text!r}") from None
    if not value.is_integer() or int(value) not in names:
        known = f"{min(names)}..{max(names)}" if names else "none"
        raise _LineError(f"unknown class index {text} (known: {known})",
                         "add the class to names in data.yaml / obj.names, or fix the index")
    return names[int(value)]


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _LineError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise _LineError(f"expected a finite number, got {text!r}")
    return value


def _check_normalised(values: list[float], width: int, height: int, slack: float = _EPS) -> None:
    bad = next((v for v in values if not -slack <= v <= 1.0 + slack), None)
    if bad is not None:
        what = f"box edge {bad!r} (cx +- w/2) is more than {slack:.0%} outside [0, 1]" if slack > _EPS else \
            f"coordinate {bad!r} is outside [0, 1]"
        raise _LineError(f"{what} (the image is {width}x{height} px)",
                         "YOLO coordinates are normalised: divide x by the image width and y by its height")


def _box_record(values: list[float], width: int, height: int) -> AnnotationRecord:
    cx, cy, bw, bh = values
    if bw <= 0 or bh <= 0:
        raise _LineError(f"zero-area box (w={bw!r}, h={bh!r})", "remove the line or give the box a size")
    _check_normalised([cx, cy, bw, bh], width, height)
    _check_normalised([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], width, height, EDGE_SLACK)
    box = ((cx - bw / 2) * width, (cy - bh / 2) * height, (cx + bw / 2) * width, (cy + bh / 2) * height)
    return AnnotationRecord(label="?", bbox=box)


def _polygon_record(values: list[float], width: int, height: int) -> AnnotationRecord:
    _check_normalised(values, width, height)
    ring = [v * (width if i % 2 == 0 else height) for i, v in enumerate(values)]
    if polygon_area(ring) <= 0:
        raise _LineError("polygon has zero area", "remove the line or fix its points")
    box = _written_box(ring)
    if box is not None:
        return AnnotationRecord(label="?", bbox=box)
    return AnnotationRecord(label="?", bbox=polygons_bbox([ring]), polygons=[ring])


def _written_box(ring: list[float]) -> tuple[float, float, float, float] | None:
    """The box of a rectangle written as ``x1 y1, x1 y2, x2 y2, x2 y1`` (our segment export of a box)."""
    if len(ring) != 8:
        return None
    x1, y1, xa, y2, x2, yb, xb, yc = ring
    if x1 == xa and x2 == xb and y1 == yc and y2 == yb and x1 < x2 and y1 < y2:
        return (x1, y1, x2, y2)
    return None


# ---------------------------------------------------------------- writing


def _all_labels(dataset: DatasetRecord) -> list[str]:
    labels = list(dict.fromkeys(dataset.labels))
    known = set(labels)
    for image in dataset.images:
        for ann in image.annotations:
            if ann.label not in known:
                known.add(ann.label)
                labels.append(ann.label)
    return labels


def _write_split(split: str | None) -> str:
    name = SPLIT_ALIASES.get(split or "train", split or "train")
    if not _SPLIT_NAME.match(name):
        raise ConfigError(f"split name {split!r} cannot be a folder name",
                          "use letters, digits, '_', '-' (for example train, val, test)")
    return name


def _known_size(image: ImageRecord) -> tuple[int, int]:
    if image.width and image.height:
        return image.width, image.height
    if image.path is not None and image.path.is_file():
        return image_header_size(image.path)
    raise FormatError(f"the size of image {image.file_name!r} is unknown",
                      "YOLO stores coordinates normalised by the image size: import the images too")


def _num(value: float) -> str:
    """12 decimals, no exponent: ~1e-9 px on a 1000 px image, readable by every YOLO tool."""
    text = f"{value:.12f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _format_line(ann: AnnotationRecord, cls: int, width: int, height: int, segment: bool,
                 with_score: bool) -> str | None:
    """One label line, or None when nothing of the shape is inside the image."""
    values = _segment_values(ann, width, height) if segment else _box_values(ann.bbox, width, height)
    if values is None:
        return None
    if with_score and ann.score is not None:
        values.append(float(ann.score))
    return " ".join([str(cls), *(_num(v) for v in values)])


def _clip_box(bbox: tuple[float, float, float, float], width: int, height: int) -> tuple[float, ...] | None:
    x1, y1 = min(max(bbox[0], 0.0), width), min(max(bbox[1], 0.0), height)
    x2, y2 = min(max(bbox[2], 0.0), width), min(max(bbox[3], 0.0), height)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def _box_values(bbox: tuple[float, float, float, float], width: int, height: int) -> list[float] | None:
    box = _clip_box(bbox, width, height)
    if box is None:
        return None
    x1, y1, x2, y2 = box
    return [(x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height]


def _segment_values(ann: AnnotationRecord, width: int, height: int) -> list[float] | None:
    if ann.kind == "box":
        box = _clip_box(ann.bbox, width, height)
        if box is None:
            return None
        x1, y1, x2, y2 = box
        ring = [x1, y1, x1, y2, x2, y2, x2, y1]  # down first: reads back as a box
    else:
        rings = ann.polygons if ann.kind == "polygon" else mask_to_polygons(rle_to_mask(ann.rle or {}))
        if not rings:
            return None
        ring = _bridge_rings([list(r) for r in rings])
    return [min(max(v, 0.0), width if i % 2 == 0 else height) / (width if i % 2 == 0 else height)
            for i, v in enumerate(ring)]


def _bridge_rings(rings: list[list[float]]) -> list[float]:
    """Join rings into one by zero-width bridges from the first ring's first point.

    Each bridge is walked there and back, so it adds no area and rasterises to nothing."""
    if len(rings) == 1:
        return rings[0]
    first = rings[0]
    out = [*first, first[0], first[1]]
    for ring in rings[1:]:
        out += [*ring, ring[0], ring[1], first[0], first[1]]
    return out


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _write_metadata(out: Path, labels: list[str], lists: dict[str, list[str]]) -> list[Path]:
    """data.yaml (Ultralytics), obj.names + obj.data + split lists (Darknet)."""
    import yaml

    splits = {s: f"images/{s}" for s in sorted(lists, key=lambda s: (s not in SPLIT_ALIASES, s))}
    splits.setdefault("train", "images/train")
    doc: dict[str, Any] = {"train": splits.pop("train")}
    # Ultralytics requires 'val'; without a val split it validates on train (read back only once).
    doc["val"] = splits.pop("val", doc["train"])
    doc.update(splits)
    doc["nc"] = len(labels)
    doc["names"] = dict(enumerate(labels))
    header = "# YOLO dataset exported by labelloop; paths are relative to this file's folder\n"
    files = {"data.yaml": header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
             "obj.names": "".join(f"{n}\n" for n in labels)}
    for split, entries in {"train": [], **lists}.items():
        files[f"{split}.txt"] = "".join(f"{e}\n" for e in entries)
    valid = "val.txt" if "val" in lists else "train.txt"
    files["obj.data"] = f"classes = {len(labels)}\ntrain = train.txt\nvalid = {valid}\nnames = obj.names\n"
    for name, text in files.items():
        _write_text(out / name, text)
    return [out / "data.yaml", out / "obj.names", out / "obj.data"]
