"""Deep Zoom (DZI) tile pyramids of big images, made lazily with Pillow and cached in the project folder.

The web app opens images too big for the screen in OpenSeadragon, which reads this pyramid: the
descriptor (``dzi_descriptor``) and its tiles (``tile_file``), laid out as OpenSeadragon's
``DziTileSource`` (and ``vips dzsave``) expect:

- level ``max_level = ceil(log2(max(width, height)))`` is the image at full resolution; each level
  below halves it, sizes rounded up (``ceil(width / 2 ** (max_level - level))``); level 0 is 1x1 px;
- a level is cut into ``TILE_SIZE`` px squares named ``{col}_{row}``, each reaching ``OVERLAP`` px
  into its neighbours (a tile is up to ``TILE_SIZE + 2 * OVERLAP`` px, less at the image's edges).

Tiles are cached under ``<project>/cache/tiles/<sha256>/<level>/<col>_<row>.jpg``, keyed by content
like the image files, each written to a temp file then moved into place (``os.replace``): a request
killed half-way never leaves half a tile. ``<level>/.done`` marks a level whose tiles are all there
(a level that a killed request left half cut lacks it; its missing tiles are cut when asked for).

Memory and time. JPEG and PNG cannot be decoded by region, so decoding the image once per tile
would cost a full decode per tile: tiles are cut a whole level at a time instead, the first time
any tile of that level is asked for, holding one decoded level in memory (3 bytes a pixel):

- any level below the top: the image is decoded once at half resolution -- JPEG with
  ``Image.draft``, which decodes at 1/2 scale directly, so the full image is never in memory; other
  formats decode in full and are halved -- and that level and every level below it are cut, each
  made from the one above with ``Image.reduce(2)`` (a box filter, rounding sizes up as the DZI
  convention does). One decode serves the whole overview, all a viewer needs until it zooms past 50 %;
- the top level (full resolution) is decoded only when one of its tiles is asked for; its memory is
  bounded by ``LABELLOOP_MAX_IMAGE_PIXELS``, checked (with Pillow's decompression-bomb check) from
  the header before any pixel is decoded.

Concurrent requests for one image wait on a per-image lock rather than decoding it twice; across
processes the atomic writes make a duplicated level harmless.

The cache is bounded: after a level is cut, whole images' pyramids are deleted, least recently
viewed first (an image folder's mtime is touched whenever one of its tiles is served), until the
project's tiles take at most ``LABELLOOP_TILE_CACHE_BYTES`` (5 GB by default). The image being
viewed, and any image whose lock is held by another request, is never deleted.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from labelloop.errors import ConflictError, NotFoundError
from labelloop.services.images import StoredImage, stored_image
from labelloop.settings import get_settings
from labelloop.store.images import load_pixels, open_image, save_atomically
from labelloop.store.project import ProjectContext

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

__all__ = ["FORMAT", "OVERLAP", "TILE_SIZE", "Pyramid", "dzi_descriptor", "prune_cache", "tile_file"]

TILE_SIZE = 512
OVERLAP = 1
FORMAT = "jpg"
JPEG_QUALITY = 90
#: full-resolution colour (4:4:4): with JPEG's default 4:2:0 colour edges bleed by a pixel or two,
#: which is what an annotator is placing boxes against; tiles are ~1.5 times as big
JPEG_SUBSAMPLING = 0
DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"
_TILE_NAME = re.compile(r"(\d+)_(\d+)\.(\w+)", re.ASCII)
_DONE = ".done"


@dataclass(frozen=True)
class Pyramid:
    """The DZI geometry of a ``width`` x ``height`` image; every size and box is in pixels of a level."""

    width: int
    height: int
    tile_size: int = TILE_SIZE
    overlap: int = OVERLAP

    @property
    def max_level(self) -> int:
        return math.ceil(math.log2(max(self.width, self.height)))

    def level_size(self, level: int) -> tuple[int, int]:
        """``(width, height)`` of ``level``: the image halved ``max_level - level`` times, rounded up."""
        scale = 2 ** (self.max_level - level)
        return -(-self.width // scale), -(-self.height // scale)

    def grid(self, level: int) -> tuple[int, int]:
        """``(columns, rows)`` of tiles at ``level``."""
        w, h = self.level_size(level)
        return -(-w // self.tile_size), -(-h // self.tile_size)

    def tile_box(self, level: int, col: int, row: int) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` of a tile in ``level`` pixels, overlap included, clipped to the level."""
        w, h = self.level_size(level)
        x0 = max(col * self.tile_size - self.overlap, 0)
        y0 = max(row * self.tile_size - self.overlap, 0)
        x1 = min((col + 1) * self.tile_size + self.overlap, w)
        y1 = min((row + 1) * self.tile_size + self.overlap, h)
        return x0, y0, x1, y1

    def check(self, level: int, col: int, row: int) -> None:
        """Raise NotFoundError naming the valid range when the tile is not in the pyramid."""
        if not 0 <= level <= self.max_level:
            raise NotFoundError(f"no tile level {level}: this {self.width}x{self.height} image has levels "
                                f"0 to {self.max_level}")
        cols, rows = self.grid(level)
        if not (0 <= col < cols and 0 <= row < rows):
            raise NotFoundError(f"no tile {col}_{row} at level {level}: it has columns 0 to {cols - 1} "
                                f"and rows 0 to {rows - 1}")


def dzi_descriptor(ctx: ProjectContext, image_id: int) -> str:
    """The image's DZI descriptor (XML): tile size, overlap, format and full size."""
    img = stored_image(ctx, image_id)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<Image xmlns="{DZI_NAMESPACE}" Format="{FORMAT}" Overlap="{OVERLAP}" TileSize="{TILE_SIZE}">\n'
            f'  <Size Width="{img.width}" Height="{img.height}"/>\n'
            f'</Image>\n')


def tile_file(ctx: ProjectContext, image_id: int, level: str, name: str) -> Path:
    """The cached file of tile ``name`` (``{col}_{row}.jpg``) at ``level``, made on first request.

    Takes the URL's strings, so a malformed address is a 404 that says what was expected."""
    lvl, col, row = _parse(level, name)
    img = stored_image(ctx, image_id)
    pyramid = Pyramid(img.width, img.height)
    pyramid.check(lvl, col, row)
    cache = ctx.cache_dir / "tiles" / img.sha256
    path = cache / str(lvl) / f"{col}_{row}.{FORMAT}"
    if not path.is_file():
        _make_level(img, pyramid, cache, lvl, path)
        prune_cache(cache.parent, get_settings().tile_cache_bytes, keep=cache)
    else:
        _touch(cache)
    return path


def _touch(cache: Path) -> None:
    with contextlib.suppress(OSError):  # pruned meanwhile by another process: the tile is re-cut if asked again
        os.utime(cache)


def _folder_bytes(folder: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.stat(os.path.join(root, name)).st_size
    return total


def prune_cache(tiles_dir: Path, max_bytes: int, keep: Path | None = None) -> list[Path]:
    """Delete whole image pyramids under ``tiles_dir``, least recently viewed first, until the rest
    takes at most ``max_bytes``; ``keep`` and pyramids being cut right now stay. Returns the deleted."""
    if not tiles_dir.is_dir():
        return []
    folders = [(f.stat().st_mtime, f) for f in tiles_dir.iterdir() if f.is_dir()]
    sizes = {f: _folder_bytes(f) for _, f in folders}
    total = sum(sizes.values())
    deleted: list[Path] = []
    for _, folder in sorted(folders, key=lambda item: item[0]):
        if total <= max_bytes:
            break
        if folder == keep:
            continue
        lock = _lock(folder)
        if not lock.acquire(blocking=False):  # another request is cutting it
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            lock.release()
        total -= sizes[folder]
        deleted.append(folder)
    return deleted


def _parse(level: str, name: str) -> tuple[int, int, int]:
    match = _TILE_NAME.fullmatch(name)
    if not (level.isascii() and level.isdigit()) or match is None:
        raise NotFoundError(f"no tile {level}/{name}", f"expected LEVEL/COL_ROW.{FORMAT} with whole numbers, "
                                                       f"e.g. 0/0_0.{FORMAT}")
    if match.group(3) != FORMAT:
        raise NotFoundError(f"no tile {level}/{name}: tiles are .{FORMAT}")
    return int(level), int(match.group(1)), int(match.group(2))


_locks: dict[Path, threading.Lock] = {}  # one per image viewed since the server started: a few bytes each
_locks_guard = threading.Lock()


def _lock(cache: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(cache, threading.Lock())


def _done(cache: Path, level: int) -> bool:
    return (cache / str(level) / _DONE).is_file()


def _make_level(img: StoredImage, pyramid: Pyramid, cache: Path, level: int, wanted: Path) -> None:
    """Cut ``level`` and the levels below it that are not done yet, from one decode (see the module
    docstring); levels between the decoded one and ``level`` are cut too (they come on the way)."""
    with _lock(cache):
        if wanted.is_file():  # another request cut it while this one waited
            return
        top = pyramid.max_level if level == pyramid.max_level else max(pyramid.max_level - 1, 0)
        pixels = _decode(img, pyramid, top)
        for lvl in range(top, -1, -1):
            if lvl < level and _done(cache, lvl):
                break
            _cut(pixels, pyramid, cache / str(lvl), lvl)
            if lvl:
                pixels = pixels.reduce(2)


def _decode(img: StoredImage, pyramid: Pyramid, level: int) -> PILImage:
    """The RGB pixels of ``level``, decoding no more of the image than Pillow allows."""
    from PIL import Image as PILImageModule

    size = pyramid.level_size(level)
    with open_image(img.path, max_pixels=get_settings().max_image_pixels) as src:
        if src.size != (img.width, img.height):
            raise ConflictError(f"the file of image {img.name} is {src.width}x{src.height} pixels, the project "
                                f"says {img.width}x{img.height}", "re-import the image")
        src.draft("RGB", size)  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that still covers ``size``
        load_pixels(src, img.path)  # a damaged (truncated) file shows what it holds
        pixels = src.convert("RGB")  # no EXIF rotation: annotations are in stored pixel coordinates
    if pixels.size != size:
        pixels = pixels.resize(size, PILImageModule.Resampling.BOX)
    return pixels


def _cut(pixels: PILImage, pyramid: Pyramid, folder: Path, level: int) -> None:
    cols, rows = pyramid.grid(level)
    for row in range(rows):
        for col in range(cols):
            tile = pixels.crop(pyramid.tile_box(level, col, row))
            save_atomically(tile, folder / f"{col}_{row}.{FORMAT}", "JPEG", quality=JPEG_QUALITY,
                            subsampling=JPEG_SUBSAMPLING)
    (folder / _DONE).touch()
