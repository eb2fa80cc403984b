"""Deep Zoom tiles of a big image (5000x3000, generated) through the HTTP API of a real server."""

from __future__ import annotations

import io
import math
import shutil
import xml.etree.ElementTree as ET
from typing import Any

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from PIL import Image

from factories import make_smooth_image

W, H = 5000, 3000
TOP = math.ceil(math.log2(max(W, H)))  # 13: the DZI convention, level 0 is 1x1 px


@pytest.fixture(scope="module")
def big(admin: httpx.Client) -> dict[str, Any]:
    """A project holding one 5000x3000 PNG (lossless, so tile pixels can be compared with the source)."""
    slug = admin.post("/api/projects", json={"name": "tiles", "labels": ["cat"]}).json()["slug"]
    pixels = make_smooth_image(H, W)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    added = admin.post(f"/api/projects/{slug}/images", files=[("files", ("big.png", buf.getvalue(), "image/png"))])
    assert added.status_code == 201, added.text
    image = added.json()["added"][0]
    return {"base": f"/api/projects/{slug}/images/{image['id']}", "sha": image["sha256"], "pixels": pixels}


def _tile(client: httpx.Client, big: dict[str, Any], level: int | str, name: str) -> httpx.Response:
    return client.get(f"{big['base']}/tiles_files/{level}/{name}")


def _decode(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB")).astype(int)


def test_descriptor_follows_dzi(admin: httpx.Client, big: dict[str, Any]) -> None:
    r = admin.get(f"{big['base']}/tiles.dzi")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "{http://schemas.microsoft.com/deepzoom/2008}Image"
    assert (root.get("TileSize"), root.get("Overlap"), root.get("Format")) == ("512", "1", "jpg")
    size = root.find("{http://schemas.microsoft.com/deepzoom/2008}Size")
    assert size is not None and (size.get("Width"), size.get("Height")) == (str(W), str(H))


@pytest.mark.parametrize(("col", "row", "box"), [
    (0, 0, (0, 0, 513, 513)),  # first tile: overlap only on the right and bottom
    (3, 2, (1535, 1023, 2049, 1537)),  # inner tile: 512 px plus 1 px of overlap on each side
    (9, 5, (4607, 2559, 5000, 3000)),  # last tile: clipped at the image's edge
])
def test_top_level_tiles_are_the_source_pixels(admin: httpx.Client, big: dict[str, Any], col: int, row: int,
                                               box: tuple[int, int, int, int]) -> None:
    tile = _decode(_tile(admin, big, TOP, f"{col}_{row}.jpg"))
    x0, y0, x1, y1 = box
    assert tile.shape == (y1 - y0, x1 - x0, 3)
    source = big["pixels"][y0:y1, x0:x1].astype(int)
    assert np.abs(tile - source).mean() < 3  # JPEG's loss only


def test_lower_levels_down_to_one_pixel(admin: httpx.Client, big: dict[str, Any]) -> None:
    assert _decode(_tile(admin, big, TOP - 1, "4_2.jpg")).shape == (1500 - 1023, 2500 - 2047, 3)
    small = _decode(_tile(admin, big, TOP - 4, "0_0.jpg"))  # 1/16 scale: 313x188, rounded up
    assert small.shape == (188, 313, 3)
    source = big["pixels"][: 187 * 16, : 312 * 16].reshape(187, 16, 312, 16, 3).mean(axis=(1, 3))
    assert np.abs(small[:187, :312] - source).mean() < 3  # each pixel is the mean of its 16x16 px
    assert _decode(_tile(admin, big, 0, "0_0.jpg")).shape == (1, 1, 3)


@pytest.mark.parametrize(("level", "name", "message"), [
    (TOP + 1, "0_0.jpg", f"levels 0 to {TOP}"),
    (TOP, "10_0.jpg", "columns 0 to 9 and rows 0 to 5"),
    (TOP, "0_6.jpg", "columns 0 to 9 and rows 0 to 5"),
    (0, "1_0.jpg", "columns 0 to 0"),
    ("-1", "0_0.jpg", "expected LEVEL/COL_ROW.jpg"),
    ("x", "0_0.jpg", "expected LEVEL/COL_ROW.jpg"),
    (0, "0-0.jpg", "expected LEVEL/COL_ROW.jpg"),
    (0, "0_0.png", "tiles are .jpg"),
])
def test_tiles_outside_the_pyramid_are_404(admin: httpx.Client, big: dict[str, Any], level: int | str, name: str,
                                           message: str) -> None:
    r = _tile(admin, big, level, name)
    assert r.status_code == 404 and r.json()["error"] == "NotFoundError"
    assert message in r.json()["message"] + (r.json()["hint"] or "")


def test_unknown_image_is_404(admin: httpx.Client, big: dict[str, Any]) -> None:
    base = big["base"].rsplit("/", 1)[0]
    assert admin.get(f"{base}/999999/tiles.dzi").status_code == 404
    assert admin.get(f"{base}/999999/tiles_files/0/0_0.jpg").status_code == 404


def test_tiles_need_a_login(server: LiveServer, big: dict[str, Any]) -> None:
    with server.anonymous() as c:
        assert c.get(f"{big['base']}/tiles.dzi").status_code == 401
        assert _tile(c, big, 0, "0_0.jpg").status_code == 401


def test_a_level_is_cut_once_then_served_from_the_cache(admin: httpx.Client, server: LiveServer,
                                                        big: dict[str, Any]) -> None:
    level = TOP - 2  # 1250x750 px: 3x2 tiles
    assert _tile(admin, big, level, "0_0.jpg").status_code == 200
    [folder] = server.home.rglob(f"cache/tiles/{big['sha']}/{level}")
    shutil.rmtree(folder)  # as if never cut (the other tests may have cut it)
    first = _tile(admin, big, level, "1_1.jpg")
    assert sorted(p.name for p in folder.glob("*.jpg")) == ["0_0.jpg", "0_1.jpg", "1_0.jpg", "1_1.jpg", "2_0.jpg",
                                                            "2_1.jpg"]  # the whole level, at once
    assert not list(folder.glob("*.tmp"))
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    again = _tile(admin, big, level, "1_1.jpg")
    other = _tile(admin, big, level, "2_1.jpg")
    assert again.content == first.content and other.status_code == 200
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == stamps  # nothing was written again
    (folder / "1_1.jpg").unlink()  # a lost tile is made again
    assert _tile(admin, big, level, "1_1.jpg").content == first.content
