"""Deep Zoom tile pyramids: the DZI geometry, one decode per pyramid, the cache, the size limits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from factories import make_smooth_image
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError
from labelloop.services import tiles
from labelloop.services.images import add_image_files, stored_image
from labelloop.store.project import ProjectContext

W, H = 1500, 700  # 11 levels above 0; the top one is 3x2 tiles


@pytest.mark.parametrize(("width", "height"), [(1, 1), (2, 1), (1, 513), (512, 512), (513, 200), (5000, 3000),
                                               (4097, 4097)])
def test_pyramid_follows_the_dzi_convention(width: int, height: int) -> None:
    p = tiles.Pyramid(width, height)
    assert p.max_level == math.ceil(math.log2(max(width, height)))
    assert p.level_size(0) == (1, 1) and p.level_size(p.max_level) == (width, height)
    for level in range(1, p.max_level + 1):
        w, h = p.level_size(level)
        assert p.level_size(level - 1) == (math.ceil(w / 2), math.ceil(h / 2))
    for level in range(p.max_level + 1):
        w, h = p.level_size(level)
        cols, rows = p.grid(level)
        covered = np.zeros((h, w), dtype=int)
        for row in range(rows):
            for col in range(cols):
                x0, y0, x1, y1 = p.tile_box(level, col, row)
                # as OpenSeadragon's TileSource.getTileBounds computes them
                assert (x0, y0) == (max(col * 512 - 1, 0), max(row * 512 - 1, 0))
                assert x1 == min(x0 + 512 + (1 if col == 0 else 2), w)
                assert y1 == min(y0 + 512 + (1 if row == 0 else 2), h)
                covered[y0:y1, x0:x1] += 1
        assert covered.min() >= 1 and covered.max() <= 4  # every pixel, overlapping by one pixel only


@pytest.fixture
def image(project: ProjectContext, tmp_path: Path) -> int:
    path = tmp_path / "wide.png"
    Image.fromarray(make_smooth_image(H, W)).save(path)
    return int(add_image_files(project, [("wide.png", path)], actor="t").added[0]["id"])


def _count_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    levels: list[int] = []
    decode = tiles._decode

    def counting(img, pyramid, level):  # type: ignore[no-untyped-def]
        levels.append(level)
        return decode(img, pyramid, level)

    monkeypatch.setattr(tiles, "_decode", counting)
    return levels


def test_one_decode_cuts_the_overview_and_one_the_top(project: ProjectContext, image: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    decoded = _count_decodes(monkeypatch)
    one = tiles.tile_file(project, image, "0", "0_0.jpg")
    for level in range(10, -1, -1):
        cols, rows = tiles.Pyramid(W, H).grid(level)
        assert tiles.tile_file(project, image, str(level), f"{cols - 1}_{rows - 1}.jpg").is_file()
    assert decoded == [10]  # at half resolution, for every level below the top
    with Image.open(one) as im:
        assert im.size == (1, 1)
    top = tiles.tile_file(project, image, "11", "2_1.jpg")
    tiles.tile_file(project, image, "11", "0_0.jpg")
    assert decoded == [10, 11]
    with Image.open(top) as im:
        assert im.size == (W - 1023, H - 511)
        assert np.abs(np.asarray(im).astype(int) - make_smooth_image(H, W)[511:, 1023:]).mean() < 2


def test_a_half_cut_level_is_completed(project: ProjectContext, image: int) -> None:
    first = tiles.tile_file(project, image, "11", "0_0.jpg")
    level = first.parent
    (level / ".done").unlink()  # as a request killed while cutting it would leave it
    (level / "2_1.jpg").unlink()
    assert tiles.tile_file(project, image, "11", "2_1.jpg").is_file()
    assert (level / ".done").is_file() and len(list(level.glob("*.jpg"))) == 6


def test_bad_addresses_say_what_is_there(project: ProjectContext, image: int) -> None:
    with pytest.raises(NotFoundError, match="levels 0 to 11"):
        tiles.tile_file(project, image, "12", "0_0.jpg")
    with pytest.raises(NotFoundError, match="columns 0 to 2 and rows 0 to 1"):
        tiles.tile_file(project, image, "11", "3_0.jpg")
    with pytest.raises(NotFoundError, match="tiles are .jpg"):
        tiles.tile_file(project, image, "0", "0_0.webp")
    with pytest.raises(NotFoundError, match="not in project"):
        tiles.tile_file(project, image + 1, "0", "0_0.jpg")


def test_the_size_limits_hold_before_decoding(project: ProjectContext, image: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABELLOOP_MAX_IMAGE_PIXELS", str(W * H - 1))
    from labelloop.settings import get_settings

    get_settings.cache_clear()
    with pytest.raises(InvalidInputError, match="over the limit"):
        tiles.tile_file(project, image, "0", "0_0.jpg")
    assert not (project.cache_dir / "tiles").exists() or not list((project.cache_dir / "tiles").rglob("*.jpg"))


def test_a_file_changed_since_import_is_refused(project: ProjectContext, image: int) -> None:
    Image.fromarray(make_smooth_image(H, W + 1)).save(stored_image(project, image).path, "PNG")
    with pytest.raises(ConflictError, match="1501x700 pixels, the project says 1500x700"):
        tiles.tile_file(project, image, "0", "0_0.jpg")


def test_the_cache_keeps_under_its_budget_dropping_the_least_recently_viewed(
        project: ProjectContext, image: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import time

    from labelloop.settings import get_settings

    others = []
    for seed in (1, 2):
        path = tmp_path / f"other{seed}.png"
        Image.fromarray(np.roll(make_smooth_image(H, W), seed * 37, axis=1)).save(path)
        others.append(int(add_image_files(project, [(path.name, path)], actor="t").added[0]["id"]))
    ids = [image, *others]
    folders = [project.cache_dir / "tiles" / stored_image(project, i).sha256 for i in ids]
    for age, i in enumerate(ids):  # view each image's overview; the first viewed is the oldest
        tiles.tile_file(project, i, "0", "0_0.jpg")
        os.utime(folders[age], (time.time() - 100 + age, time.time() - 100 + age))
    one_image = tiles._folder_bytes(folders[0])
    assert one_image > 0 and all(f.is_dir() for f in folders)

    tiles.tile_file(project, image, "0", "0_0.jpg")  # served from the cache: image 0 is now the newest
    deleted = tiles.prune_cache(project.cache_dir / "tiles", int(one_image * 2.5))
    assert deleted == [folders[1]]  # the least recently viewed went, and only it
    assert folders[0].is_dir() and folders[2].is_dir()

    # cutting a new level prunes to the configured budget, never the pyramid being viewed
    monkeypatch.setenv("LABELLOOP_TILE_CACHE_BYTES", "1")
    get_settings.cache_clear()
    assert tiles.tile_file(project, others[1], "11", "0_0.jpg").is_file()
    assert not folders[0].exists() and folders[2].is_dir()
    assert tiles.tile_file(project, image, "0", "0_0.jpg").is_file()  # a pruned image is re-cut when viewed
