"""Image files: inspect safely (size limits, decompression bombs), hash, and store by content."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

from labelloop.errors import InvalidInputError

__all__ = ["ImageInfo", "inspect_image", "sha256_file", "store_blob"]

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"}


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    format: str


def inspect_image(path: Path, *, max_pixels: int, max_bytes: int) -> ImageInfo:
    """Width, height and format from the header, refusing bombs and absurd sizes.

    Raises InvalidInputError naming the file when it is missing, not an image, too large,
    or truncated (the pixels are decoded lazily: ``verify`` checks the stream).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInputError(f"{path}: image file not found ({exc.strerror})",
                                "check the path, or import with --skip-invalid") from exc
    if size > max_bytes:
        raise InvalidInputError(f"{path}: file is {size} bytes, over the limit of {max_bytes}",
                                "raise LABELLOOP_MAX_IMAGE_BYTES if this is intended")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                fmt = img.format or ""
                if width * height > max_pixels:
                    raise InvalidInputError(
                        f"{path}: image of {width}x{height} pixels is over the limit of {max_pixels}",
                        "raise LABELLOOP_MAX_IMAGE_PIXELS if this is a real image")
                img.verify()
    except InvalidInputError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InvalidInputError(f"{path}: not a readable image ({exc})",
                                "expected JPEG, PNG, TIFF, BMP or WebP") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InvalidInputError(f"{path}: image is truncated or corrupt ({exc})",
                                "re-copy the file, or import with --skip-invalid") from exc
    if width <= 0 or height <= 0:
        raise InvalidInputError(f"{path}: image has no pixels ({width}x{height})")
    return ImageInfo(width=width, height=height, format=fmt)


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
