"""The contract every annotation format implements, and the registry that finds them.

A format is a class registered under a name with :func:`register_format`. It reads a
path (file or folder) into a :class:`~labelloop.core.records.DatasetRecord` and writes
one into a folder another tool can read as it is. Adding a format never means editing
a central class: importing ``labelloop.formats`` imports the built-in modules, each of
which registers itself.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import ClassVar

from labelloop.core.records import IMAGE_EXTENSIONS, AnnotationRecord, DatasetRecord
from labelloop.errors import ConfigError, FormatError

__all__ = [
    "AnnotationFormat",
    "ImageFinder",
    "ReadOptions",
    "Recorder",
    "WriteOptions",
    "detect_format",
    "find_image",
    "get_format",
    "image_header_size",
    "list_formats",
    "load_json",
    "make_annotation",
    "place_image",
    "read_head",
    "read_image_size",
    "register_format",
    "safe_relative_name",
]


@dataclass(frozen=True)
class ReadOptions:
    """How to read: ``skip_invalid`` collects bad records in ``DatasetRecord.skipped``
    instead of failing the whole read."""

    skip_invalid: bool = False


@dataclass(frozen=True)
class WriteOptions:
    """How to write: images are copied (``copy``), symlinked (``link``) or left out (``none``)."""

    images: str = "copy"  # copy | link | none
    task: str = "detect"
    #: the dataset holds unreviewed proposals; formats that need a flag to keep scores use it
    include_proposals: bool = False


class Recorder:
    """Collects per-record problems: raises at once, or records them under ``skip_invalid``."""

    def __init__(self, options: ReadOptions) -> None:
        self.skip_invalid = options.skip_invalid
        self.skipped: list[str] = []

    def invalid(self, file: str | Path, record: str, message: str, hint: str | None = None) -> None:
        err = FormatError(message, hint, file=str(file), record=record)
        if not self.skip_invalid:
            raise err
        self.skipped.append(str(err))


def make_annotation(recorder: Recorder, file: str | Path, record: str,
                    build: Callable[[], AnnotationRecord]) -> AnnotationRecord | None:
    """Build a record; a ``ValueError``/``KeyError``/``TypeError`` (or an embedded image that does not
    decode, or nesting too deep) becomes a FormatError naming the file and record (or a skipped line)."""
    try:
        return build()
    except (ValueError, KeyError, TypeError, IndexError, OSError, RecursionError) as exc:
        recorder.invalid(file, record, str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}")
        return None


class AnnotationFormat:
    """Base class of a format. Subclasses set ``name`` and implement what they support."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    can_write: ClassVar[bool] = True
    #: what the format can hold: any of "box", "polygon", "mask", "score"
    holds: ClassVar[frozenset[str]] = frozenset({"box"})

    def detect(self, path: Path) -> float:
        """Confidence in [0, 1] that ``path`` (a file or folder) is in this format."""
        return 0.0

    def read(self, path: Path, options: ReadOptions) -> DatasetRecord:
        raise NotImplementedError

    def write(self, dataset: DatasetRecord, out: Path, options: WriteOptions) -> list[Path]:
        """Write ``dataset`` into folder ``out``; return the annotation files written."""
        raise ConfigError(f"format {self.name!r} can only be imported, not exported",
                          f"export to one of: {', '.join(n for n, f in _REGISTRY.items() if f.can_write)}")


_REGISTRY: dict[str, AnnotationFormat] = {}


def register_format(cls: type[AnnotationFormat]) -> type[AnnotationFormat]:
    """Class decorator: register a format under ``cls.name`` (a duplicate name is an error)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY:
        raise ValueError(f"format {cls.name!r} is already registered")
    _REGISTRY[cls.name] = cls()
    return cls


def _load_builtins() -> None:
    import labelloop.formats.builtin  # noqa: F401  (each module registers itself)


def list_formats() -> list[AnnotationFormat]:
    _load_builtins()
    return list(_REGISTRY.values())


def get_format(name: str) -> AnnotationFormat:
    _load_builtins()
    key = name.lower().replace("-", "").replace("_", "")
    aliases = {"cvatxml": "cvat", "cvat11": "cvat", "ls": "labelstudio", "pascalvoc": "voc",
               "ultralytics": "yolo", "darknet": "yolo"}
    key = aliases.get(key, key)
    if key not in _REGISTRY:
        raise ConfigError(f"unknown format {name!r}", f"expected one of: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[key]


def detect_format(path: Path) -> AnnotationFormat:
    """The one format that claims ``path``; a clear error when none or several do."""
    if not path.exists():
        raise FormatError(f"no such file or folder: {path}", "check the path")
    scores = sorted(((fmt.detect(path), fmt.name) for fmt in list_formats()), reverse=True)
    best, name = scores[0]
    if best <= 0.0:
        raise FormatError(f"cannot tell the annotation format of {path}",
                          f"pass --format with one of: {', '.join(sorted(_REGISTRY))}")
    close = [n for s, n in scores if s > 0 and best - s < 0.2]
    if len(close) > 1:
        raise FormatError(f"{path} could be any of: {', '.join(close)}", "pass --format to choose")
    return _REGISTRY[name]


def safe_relative_name(name: str, *, file: str | Path, record: str) -> str:
    """Normalise an image file name from an annotation file; refuse absolute paths and ``..``."""
    cleaned = name.replace("\\", "/").strip()
    posix = PurePosixPath(cleaned)
    if not cleaned or posix.is_absolute() or ".." in posix.parts or (len(cleaned) > 1 and cleaned[1] == ":"):
        raise FormatError(f"unsafe image file name {name!r}",
                          "file names must be relative to the dataset folder, without '..'",
                          file=str(file), record=record)
    return str(posix).lstrip("./") if cleaned.startswith("./") else str(posix)


def place_image(src: Path | None, dst: Path, mode: str) -> None:
    """Put an image at ``dst`` for an export: copy, symlink, or nothing (``none``)."""
    if mode == "none" or src is None:
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists() or dst.is_symlink():
        dst.unlink()
    if mode == "link":
        os.symlink(os.path.abspath(src), dst)
    else:
        shutil.copyfile(src, dst)


#: a search for images anywhere under a dataset stops after this many files (a wrong root, e.g. ``/``)
MAX_INDEXED_FILES = 2_000_000


def _index_images(root: Path) -> dict[str, list[Path]]:
    """Image files under ``root`` (hidden folders skipped) by file name."""
    index: dict[str, list[Path]] = {}
    seen = 0
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            seen += 1
            if os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS:
                index.setdefault(name, []).append(Path(folder) / name)
        if seen > MAX_INDEXED_FILES:
            raise FormatError(f"{root} holds more than {MAX_INDEXED_FILES} files: too many to search for images",
                              "point the import at the dataset's own folder")
    return index


class ImageFinder:
    """Finds image files by name under candidate roots, listing each folder once
    (a stat per candidate path would dominate imports of 100k images).

    With ``search_root``, a name not found there is looked for anywhere under ``search_root`` by its
    file name (datasets keep images in ``images/``, ``JPEGImages/``, ``train/``, ...); a name found in
    several folders is a :class:`FormatError` listing them.
    """

    def __init__(self, roots: list[Path], search_root: Path | None = None) -> None:
        self.roots = [r for r in dict.fromkeys(roots) if r.is_dir()]
        self.search_root = search_root if search_root is not None and search_root.is_dir() else None
        self._listings: dict[Path, frozenset[str]] = {}
        self._index: dict[str, list[Path]] | None = None

    def _names(self, folder: Path) -> frozenset[str]:
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(e.name for e in os.scandir(folder) if not e.is_dir())
            except OSError:
                self._listings[folder] = frozenset()
        return self._listings[folder]

    def find(self, file_name: str, near: Path | None = None) -> Path | None:
        """``file_name`` under ``near`` (e.g. the annotation file's folder), then the roots, then anywhere."""
        rel = PurePosixPath(file_name)
        for root in ([near] if near is not None and near.is_dir() else []) + self.roots:
            for candidate in (root / rel, root / rel.name):
                if candidate.name in self._names(candidate.parent):
                    return candidate
        return self._anywhere(rel)

    def _anywhere(self, rel: PurePosixPath) -> Path | None:
        if self.search_root is None:
            return None
        if self._index is None:
            self._index = _index_images(self.search_root)
        hits = self._index.get(rel.name, [])
        if len(hits) > 1:  # the annotation's own sub-path decides when it can
            hits = [h for h in hits if h.as_posix().endswith("/" + rel.as_posix())] or hits
        if len(hits) > 1:
            shown = ", ".join(str(h.relative_to(self.search_root)) for h in hits[:5])
            raise FormatError(f"image {rel.as_posix()!r} is in {len(hits)} folders under {self.search_root}: {shown}",
                              "point the import at the folder of one copy, or remove the duplicates")
        return hits[0] if hits else None


def find_image(file_name: str, roots: list[Path]) -> Path | None:
    """The first existing ``root/file_name`` (or ``root/basename``) among ``roots``."""
    return ImageFinder(roots).find(file_name)


def image_header_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the image header (PIL opens lazily; pixels are not decoded).

    Raises ``OSError`` (missing, unreadable or not an image) or PIL's ``DecompressionBombError``."""
    from PIL import Image

    with Image.open(path) as img:
        return int(img.size[0]), int(img.size[1])


def read_image_size(path: Path | None) -> tuple[int | None, int | None]:
    """:func:`image_header_size`, or ``(None, None)`` when the file is missing or unreadable."""
    if path is None or not path.is_file():
        return None, None
    from PIL import Image

    try:
        return image_header_size(path)
    except (OSError, Image.DecompressionBombError):
        return None, None


def read_head(path: Path, size: int = 8192) -> bytes:
    """The first ``size`` bytes of a file (empty when unreadable), for format detection."""
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def load_json(path: Path) -> object:
    """Parse a JSON file; a truncated or invalid file is a FormatError with the line and column."""
    import json

    try:
        with open(path, "rb") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise FormatError(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                          "is the file complete? re-export it from the source tool", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise FormatError("not UTF-8 text", "is this a JSON file?", file=str(path)) from exc
    except RecursionError:
        raise FormatError("the JSON is nested too deeply to be an annotation file",
                          "is this the right file? annotation files nest a few levels", file=str(path)) from None
    except OSError as exc:
        raise FormatError(f"cannot read: {exc.strerror}", file=str(path)) from exc
