"""Image files: inspect safely (size limits, decompression bombs), hash, and store by content."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelloop.core.records import IMAGE_EXTENSIONS
from labelloop.errors import InvalidInputError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["ImageInfo", "damage_note", "decode_rgb", "inspect_image", "load_pixels", "open_image", "save_atomically",
           "sha256_file", "store_blob", "write_json_atomic"]



@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str
    #: why the pixels are only partly there (a truncated file that still decodes), else None
    damaged: str | None = None


def damage_note(problem: str, reason: str) -> str:
    """What ``images.damaged`` records: ``"<problem>: <reason>"`` (import: ``damaged: ...``; ``doctor``:
    also ``missing``, ``changed``, ``unreadable``)."""
    return f"{problem}: {reason}"[:300]


_LENIENT = threading.Lock()


def load_pixels(img: PILImage, path: Path, *, strict: bool = False) -> str | None:
    """Decode every pixel of an opened image: ``None`` when whole, the reason when the file is cut short
    but what is there decodes (missing pixels come out grey); :class:`InvalidInputError` when nothing does.

    Pillow's truncation switch is process-global: a lenient decode sets it under a lock, so a ``strict``
    check (import: is this file whole?) takes the same lock and is never fooled by another thread.
    """
    from PIL import ImageFile

    try:
        if strict:
            with _LENIENT:
                img.load()
        else:
            img.load()
        return None
    except OSError as exc:
        if "truncated" not in str(exc) and "broken data stream" not in str(exc):
            raise _corrupt(path, exc) from exc
        reason = f"truncated file, the missing pixels are grey ({exc})"
    with _LENIENT:  # Pillow's switch is global: only this block decodes leniently
        old, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, True
        try:
            img.load()
        except (OSError, SyntaxError, ValueError) as exc:
            raise _corrupt(path, exc) from exc
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = old
    return reason


def inspect_image(path: Path, *, max_pixels: int, max_bytes: int, decode: bool = True) -> ImageInfo:
    """Width, height and format, refusing bombs and absurd sizes; with ``decode`` (the default) every
    pixel is decoded once, so a truncated file is caught at import (``damaged``) and not in training.

    Raises InvalidInputError naming the file when it is missing, not an image, too large,
    or corrupt beyond decoding.
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"{path}: image file not found ({exc.strerror})",
                                "check the path, or import with --skip-invalid") from exc
    if size > max_bytes:
        raise InvalidInputError(f"{path}: file is {size} bytes, over the limit of {max_bytes}",
                                "raise LABELLOOP_MAX_IMAGE_BYTES if this is intended")
    damaged = None
    try:
        with open_image(path, max_pixels=max_pixels) as img:
            width, height = img.size
            fmt = img.format or ""
            if decode:
                damaged = load_pixels(img, path, strict=True)
            else:
                img.verify()
    except (OSError, SyntaxError, ValueError) as exc:
        raise _corrupt(path, exc) from exc
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{path}: image has no pixels ({width}x{height})")
    return ImageInfo(width=width, height=height, format=fmt, damaged=damaged)


@contextmanager
def open_image(path: Path, *, max_pixels: int) -> Iterator[PILImage]:
    """Open ``path`` with Pillow (pixels not decoded yet), refusing it from the header alone when it
    has more than ``max_pixels`` pixels or Pillow takes it for a decompression bomb.

    Every path that decodes a stored image goes through here, so ``LABELLOOP_MAX_IMAGE_PIXELS``
    and the bomb check hold for files linked in place or changed since they were imported.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInputError(f"{path}: not a readable image ({exc})",
                                "expected JPEG, PNG, TIFF, BMP or WebP") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise _corrupt(path, exc) from exc
    with img:
        width, height = img.size
        if width * height > max_pixels:
            raise InvalidInputError(f"{path}: image of {width}x{height} pixels is over the limit of {max_pixels}",
                                    "raise LABELLOOP_MAX_IMAGE_PIXELS if this is a real image")
        yield img


def decode_rgb(path: str | Path, *, max_pixels: int) -> Any:
    """``(H, W, 3)`` uint8 RGB pixels of a stored image, through :func:`open_image` (size limit, bomb check).

    The one convention of labelloop: pixels *as stored*, EXIF orientation not applied. Boxes,
    tiles, thumbnails, the web viewer (``image-orientation: none``), training, pre-annotation and
    exports all use these coordinates, so a rotated JPEG's boxes always sit on the pixels they were
    drawn on. Every reader of pixels decodes through here.
    """
    import numpy as np

    path = Path(path)
    try:
        with open_image(path, max_pixels=max_pixels) as img:
            load_pixels(img, path)  # a truncated file decodes what it holds (imported as damaged)
            return np.array(img.convert("RGB"))  # writable (torch.from_numpy warns on read-only arrays)
    except (OSError, SyntaxError, ValueError) as exc:
        raise _corrupt(path, exc) from exc


def _corrupt(path: Path, exc: Exception) -> InvalidInputError:
    return InvalidInputError(f"{path}: image is truncated or corrupt ({exc})",
                             "re-copy the file, or import with --skip-invalid")


def _replace_atomically(dst: Path, write: Callable[[Path], object]) -> None:
    """``write`` a temp file beside ``dst``, then ``os.replace`` it: a reader (or a request killed
    half-way) never sees half a file, and two writers of the same file both succeed."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f"{dst.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)


def save_atomically(img: PILImage, dst: Path, fmt: str, **params: Any) -> None:
    """Write ``img`` to ``dst`` atomically (see :func:`_replace_atomically`)."""
    _replace_atomically(dst, lambda tmp: img.save(tmp, fmt, **params))


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` atomically (never half a file)."""
    import json

    _replace_atomically(path, lambda tmp: tmp.write_text(json.dumps(data, indent=2)))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def store_blob(src: Path, images_dir: Path, sha: str) -> tuple[Path, bool]:
    """Copy ``src`` into the content-addressed store; returns (path, created_now)."""
    ext = src.suffix.lower() if src.suffix.lower() in IMAGE_EXTENSIONS else ".img"
    dst = images_dir / sha[:2] / f"{sha}{ext}"
    if dst.exists():
        return dst, False
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + f".{os.getpid()}.tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)
    return dst, True
