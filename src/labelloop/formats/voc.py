"""Pascal VOC XML: one ``<annotation>`` file per image, boxes only.

Layouts read: the VOC devkit (``Annotations/*.xml`` + ``JPEGImages/`` +
``ImageSets/Main/{train,val,test}.txt`` for splits, also one level down as in
``VOCdevkit/VOC2012``) and a folder of XMLs next to or beside the images (LabelImg,
the raccoon dataset: ``annotations/*.xml`` + ``images/``). Files are parsed with
``defusedxml``: a DOCTYPE with entities (billion laughs, external entities) is refused.

Boxes are read as written, floats included (VOC's 1-based pixel convention is not
shifted), and written with full precision (integers without a decimal point), so a
round trip is exact. ``difficult``, ``truncated``, ``occluded`` (as bools) and ``pose``
live in ``AnnotationRecord.attributes``; other attributes go in CVAT's
``<attributes><attribute><name/><value/></attribute></attributes>``. A model's
confidence is kept in a non-standard ``<score>`` element of the ``<object>`` (VOC
readers ignore unknown elements); reading one sets ``source="model"`` and
``review_state="proposed"``. Polygons and masks are written as their bounding boxes:
VOC cannot hold them. ``labels.txt`` (one class per line) keeps classes that have no
objects; CVAT's ``labelmap.txt`` is read too.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from labelloop.core.records import IMAGE_EXTENSIONS, AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats.base import (
    AnnotationFormat,
    ImageFinder,
    ReadOptions,
    Recorder,
    WriteOptions,
    place_image,
    register_format,
    safe_relative_name,
)

__all__ = ["VocFormat"]

_FLAGS = ("difficult", "truncated", "occluded")
_KNOWN = (*_FLAGS, "pose")
#: the suffixes tried for an image named without one, the usual ones first
_IMAGE_SUFFIXES = sorted(IMAGE_EXTENSIONS, key=lambda s: (s not in (".jpg", ".jpeg", ".png"), s))
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Layout:
    root: Path  # dataset folder: images, ImageSets and labels.txt are looked for here
    ann_dir: Path  # XML ids (for ImageSets) are paths relative to this folder
    files: tuple[Path, ...]


@register_format
class VocFormat(AnnotationFormat):
    name = "voc"
    description = "Pascal VOC XML (boxes; difficult/truncated/occluded/pose)"
    holds = frozenset({"box", "score"})

    def detect(self, path: Path) -> float:
        if path.is_file():
            return 0.8 if path.suffix.lower() == ".xml" and _looks_like_voc(path) else 0.0
        layout = _find_layout(path)
        return 0.85 if layout is not None and layout.files else 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        layout = _find_layout(path)
        if layout is None or not layout.files:
            raise FormatError("no Pascal VOC XML files found", "expected Annotations/*.xml (or annotations/"
                              "*.xml, or *.xml) with an <annotation> root", file=str(path))
        recorder = Recorder(options)
        splits = _read_splits(layout.root)
        finder = ImageFinder(_image_roots(layout.root), search_root=_search_root(layout))
        images: list[ImageRecord] = []
        seen: set[str] = set()
        for file in layout.files:
            image = _read_xml(file, recorder, finder)
            if image is None:
                continue
            if image.file_name in seen:
                recorder.invalid(file, "<filename>", f"duplicate file name {image.file_name!r}",
                                 "each image must have one annotation file")
                continue
            seen.add(image.file_name)
            image.split = splits.get(_xml_id(file, layout.ann_dir))
            images.append(image)
        labels = _read_label_list(layout.root)
        dataset = DatasetRecord(labels=labels, images=images, task="detect", skipped=recorder.skipped)
        dataset.ensure_labels()
        return dataset

    def write(self, dataset: DatasetRecord, out: Path, options: WriteOptions) -> list[Path]:
        written: list[Path] = []
        split_ids: dict[str, list[str]] = {}
        for image in dataset.images:
            name = safe_relative_name(image.file_name, file=out, record=image.file_name)
            xml_id = str(PurePosixPath(name).with_suffix(""))
            target = out / "Annotations" / f"{xml_id}.xml"
            _write_tree(_annotation_element(image, name), target)
            written.append(target)
            place_image(image.path, out / "JPEGImages" / name, options.images)
            if image.split:
                split_ids.setdefault(image.split, []).append(xml_id)
        for split, ids in split_ids.items():
            _write_text(out / "ImageSets" / "Main" / f"{PurePosixPath(split).name}.txt", ids)
        labels = list(dict.fromkeys(dataset.labels))
        labels += sorted({a.label for i in dataset.images for a in i.annotations} - set(labels))
        _write_text(out / "labels.txt", labels)
        return written


# ---------------------------------------------------------------- layout


def _looks_like_voc(path: Path) -> bool:
    """An XML file whose root element is ``<annotation>`` (CVAT's is ``<annotations>``)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(2048)
    except OSError:
        return False
    return b"<annotation>" in head or b"<annotation " in head


def _find_layout(path: Path) -> _Layout | None:
    if path.is_file():
        root = path.parent.parent if path.parent.name.lower() == "annotations" else path.parent
        return _Layout(root, path.parent, (path,))
    if not path.is_dir():
        return None
    candidates = [(path, path / "Annotations"), (path, path / "annotations")]
    candidates += [(d.parent, d) for d in sorted(path.glob("*/Annotations"))]
    for root, ann_dir in candidates:
        if ann_dir.is_dir():
            files = tuple(sorted(ann_dir.rglob("*.xml")))
            if files:
                return _Layout(root, ann_dir, files)
    flat = tuple(p for p in sorted(path.glob("*.xml")) if _looks_like_voc(p))
    if flat:
        return _Layout(path, path, flat)
    nested = tuple(p for p in sorted(path.rglob("*.xml")) if not _hidden(p, path) and _looks_like_voc(p))
    return _Layout(path, path, nested) if nested else None  # e.g. annots/*.xml beside images/


def _hidden(p: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(root).parts[:-1])


def _search_root(layout: _Layout) -> Path:
    """Where images may be anywhere: the dataset folder, or the folder above a folder of XML files only
    (``import dataset/annots`` finds ``dataset/images``)."""
    root = layout.root
    holds_images = any(p.suffix.lower() in _IMAGE_SUFFIXES for p in root.iterdir()) if root.is_dir() else False
    if not holds_images and not any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return root.parent
    return root


def _image_roots(root: Path) -> list[Path]:
    return [root / "JPEGImages", root / "images", root / "Images", root / "PNGImages", root]


def _xml_id(file: Path, ann_dir: Path) -> str:
    try:
        return file.relative_to(ann_dir).with_suffix("").as_posix()
    except ValueError:
        return file.stem


def _read_splits(root: Path) -> dict[str, str]:
    """Image id -> split from ``ImageSets/Main/{train,val,test}.txt`` (``trainval`` when alone)."""
    main = root / "ImageSets" / "Main"
    splits: dict[str, str] = {}
    names = [s for s in _SPLITS if (main / f"{s}.txt").is_file()]
    if not names and (main / "trainval.txt").is_file():
        names = ["trainval"]
    for split in names:
        for line in (main / f"{split}.txt").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.strip():
                splits.setdefault(line.split()[0], split)
    return splits


def _read_label_list(root: Path) -> list[str]:
    """Class names from ``labels.txt`` (ours) or CVAT's ``labelmap.txt`` (``name:color:...``)."""
    for name in ("labels.txt", "labelmap.txt"):
        file = root / name
        if file.is_file():
            labels = []
            for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
                label = line.split(":")[0].strip() if name == "labelmap.txt" else line.strip()
                if label and not label.startswith("#") and label != "background":
                    labels.append(label)
            return list(dict.fromkeys(labels))
    return []


# ---------------------------------------------------------------- reading


def _parse(file: Path, recorder: Recorder) -> ET.Element | None:
    """Parse with defusedxml; entity attacks and broken XML become FormatErrors naming the file."""
    import defusedxml
    import defusedxml.ElementTree as DET

    try:
        return DET.parse(file).getroot()
    except defusedxml.DefusedXmlException as exc:
        recorder.invalid(file, "DOCTYPE", f"refused XML entity or DTD declaration ({type(exc).__name__}): "
                         "entities can expand into gigabytes ('billion laughs') or read local files",
                         "remove the <!DOCTYPE ...> and <!ENTITY ...> lines; VOC files never need them")
    except ET.ParseError as exc:
        line, column = exc.position
        recorder.invalid(file, f"line {line}", f"invalid XML at line {line} column {column}: {exc}",
                         "is the file complete? re-export it from the source tool")
    except OSError as exc:
        recorder.invalid(file, "file", f"cannot read: {exc.strerror}")
    return None


def _read_xml(file: Path, recorder: Recorder, finder: ImageFinder) -> ImageRecord | None:
    root = _parse(file, recorder)
    if root is None:
        return None
    if root.tag != "annotation":
        hint = "is this a CVAT XML file? try --format cvat" if root.tag == "annotations" else None
        recorder.invalid(file, f"<{root.tag}>", f"expected a VOC <annotation> root element, got <{root.tag}>",
                         hint)
        return None
    try:
        name = _image_name(root, file)
    except FormatError as err:
        recorder.invalid(file, err.record or "<filename>", err.reason, err.hint)
        return None
    try:
        path = _locate_image(name, finder, file.parent)
    except FormatError as err:  # the name is in several folders: this record, not the whole import
        recorder.invalid(file, "<filename>", err.reason, err.hint)
        return None
    width, height = _size(root, path)
    image = ImageRecord(file_name=name, width=width, height=height, path=path)
    for i, obj in enumerate(root.findall("object")):
        try:
            image.annotations.append(_object_record(obj))
        except (ValueError, TypeError) as exc:
            label = (obj.findtext("name") or "").strip()
            recorder.invalid(file, f"object[{i}]" + (f" {label!r}" if label else ""), str(exc))
    return image


def _image_name(root: ET.Element, file: Path) -> str:
    """The image file name: ``<filename>``, else the base name of ``<path>``, else the XML's stem.

    ``<path>`` is usually an absolute path on the annotator's machine (LabelImg): it is
    never opened, but a ``..`` in it is refused like one in ``<filename>``."""
    filename = (root.findtext("filename") or "").strip()
    path_text = (root.findtext("path") or "").strip()
    if path_text and ".." in PureWindowsPath(path_text).parts:
        raise FormatError(f"unsafe image path {path_text!r}", "remove '..' from <path>", file=str(file),
                          record="<path>")
    if filename:
        return safe_relative_name(filename, file=file, record="<filename>")
    if path_text:
        return safe_relative_name(PureWindowsPath(path_text).name, file=file, record="<path>")
    return file.stem


def _locate_image(name: str, finder: ImageFinder, near: Path) -> Path | None:
    found = finder.find(name, near)
    if found is None and not PurePosixPath(name).suffix:  # ImageNet-style <filename> without extension
        found = next((p for s in _IMAGE_SUFFIXES if (p := finder.find(name + s, near)) is not None), None)
    return found


def _size(root: ET.Element, path: Path | None) -> tuple[int | None, int | None]:
    """``<size>`` when it is positive, else the image header, else unknown."""
    try:
        width = int(float(root.findtext("size/width") or 0))
        height = int(float(root.findtext("size/height") or 0))
    except (ValueError, OverflowError):  # text, or inf
        width = height = 0
    if width > 0 and height > 0:
        return width, height
    if path is not None:
        from PIL import Image

        try:
            with Image.open(path) as im:
                return int(im.size[0]), int(im.size[1])
        except (OSError, ValueError, Image.DecompressionBombError):
            pass
    return None, None


def _object_record(obj: ET.Element) -> AnnotationRecord:
    label = (obj.findtext("name") or "").strip()
    if not label:
        raise ValueError("object has no <name> (expected the class name)")
    box = obj.find("bndbox")
    if box is None:
        raise ValueError("object has no <bndbox> (expected xmin, ymin, xmax, ymax)")
    xyxy = tuple(_coordinate(box, key) for key in ("xmin", "ymin", "xmax", "ymax"))
    score_text = obj.findtext("score")
    score = _coordinate(obj, "score") if score_text is not None and score_text.strip() else None
    return AnnotationRecord(label=label, bbox=(xyxy[0], xyxy[1], xyxy[2], xyxy[3]), score=score,
                            source="model" if score is not None else "human",
                            review_state="proposed" if score is not None else None,
                            attributes=_attributes(obj))


def _coordinate(parent: ET.Element, key: str) -> float:
    text = parent.findtext(key)
    if text is None or not text.strip():
        raise ValueError(f"missing <{key}>")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a number in <{key}>, got {text.strip()!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"expected a finite number in <{key}>, got {text.strip()!r}")
    return value


def _flag(text: str) -> bool | str:
    lowered = text.strip().lower()
    if lowered in ("0", "1", "true", "false"):
        return lowered in ("1", "true")
    return text.strip()


def _attributes(obj: ET.Element) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    for key in _KNOWN:
        text = obj.findtext(key)
        if text is not None and text.strip():
            attrs[key] = _flag(text) if key in _FLAGS else text.strip()
    for attr in obj.findall("attributes/attribute"):
        name = (attr.findtext("name") or "").strip()
        if name:
            attrs[name] = (attr.findtext("value") or "").strip()
    return attrs


# ---------------------------------------------------------------- writing


def _num(value: float) -> str:
    """Full precision; whole numbers without ``.0`` (many VOC readers call ``int()`` on them)."""
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def _sub(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _image_info(image: ImageRecord) -> tuple[int, int, int]:
    """``(width, height, depth)``; 0 for a size that is not known."""
    width, height, depth = image.width or 0, image.height or 0, 3
    if image.path is not None and image.path.is_file():
        from PIL import Image

        try:
            with Image.open(image.path) as im:
                depth = len(im.getbands())
                if not (width and height):
                    width, height = im.size
        except (OSError, ValueError, Image.DecompressionBombError):
            pass
    return int(width), int(height), depth


def _annotation_element(image: ImageRecord, name: str) -> ET.Element:
    root = ET.Element("annotation")
    _sub(root, "folder", "JPEGImages")
    _sub(root, "filename", name)
    _sub(_sub(root, "source"), "database", "labelloop")
    width, height, depth = _image_info(image)
    size = _sub(root, "size")
    for tag, value in (("width", width), ("height", height), ("depth", depth)):
        _sub(size, tag, str(value))
    _sub(root, "segmented", "0")
    for ann in image.annotations:
        _object_element(root, ann)
    return root


def _flag_text(value: Any) -> str:
    return str(int(value)) if isinstance(value, bool | int) else str(value)


def _object_element(root: ET.Element, ann: AnnotationRecord) -> None:
    obj = _sub(root, "object")
    _sub(obj, "name", ann.label)
    _sub(obj, "pose", str(ann.attributes.get("pose", "Unspecified")))
    _sub(obj, "truncated", _flag_text(ann.attributes.get("truncated", 0)))
    _sub(obj, "difficult", _flag_text(ann.attributes.get("difficult", 0)))
    if "occluded" in ann.attributes:
        _sub(obj, "occluded", _flag_text(ann.attributes["occluded"]))
    box = _sub(obj, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), ann.bbox, strict=True):
        _sub(box, tag, _num(value))
    if ann.score is not None:
        _sub(obj, "score", repr(float(ann.score)))
    extra = {k: v for k, v in ann.attributes.items() if k not in _KNOWN}
    if extra:
        attrs = _sub(obj, "attributes")
        for key, value in extra.items():
            attr = _sub(attrs, "attribute")
            _sub(attr, "name", str(key))
            _sub(attr, "value", str(value).lower() if isinstance(value, bool) else str(value))


def _write_tree(root: ET.Element, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    ET.indent(root, space="\t")
    tmp = target.with_name(target.name + ".tmp")
    ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=False)
    tmp.replace(target)


def _write_text(target: Path, lines: list[str]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
