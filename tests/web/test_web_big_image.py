"""An image too big for the screen opens in OpenSeadragon over the server's Deep Zoom tiles, and a box
drawn on it is saved in pixels of the full image."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from browser_helpers import log_in, shot
from live_server import LiveServer
from PIL import Image

from factories import make_smooth_image

pytestmark = [pytest.mark.browser, pytest.mark.slow]
W, H = 5000, 3000


def test_big_image_opens_tiled_and_boxes_are_in_image_pixels(page: Any, web_server: LiveServer,
                                                              tmp_path: Path) -> None:
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Big", "labels": ["car", "truck"]}).json()["slug"]
    path = tmp_path / "aerial.jpg"
    Image.fromarray(make_smooth_image(H, W)).save(path, quality=92)
    tiles: list[tuple[str, int]] = []
    page.on("response", lambda r: tiles.append((r.url, r.status)) if "/tiles" in r.url else None)
    ours = (web_server.url, "data:", "blob:")
    elsewhere: list[str] = []  # nothing from a CDN: OpenSeadragon's button images are off
    page.on("request", lambda r: None if r.url.startswith(ours) else elsewhere.append(r.url))
    log_in(page, web_server.url)
    page.goto(f"{web_server.url}/#/p/{slug}/annotate")
    page.wait_for_selector("text=No images yet")
    page.set_input_files("[data-testid=upload-input]", str(path))
    page.wait_for_selector("[data-testid=tiled-viewer] .openseadragon-container")
    assert page.locator(".canvas-img").count() == 0  # not the plain <img> canvas
    page.wait_for_function("() => document.querySelector('.zoom-label').textContent !== '100%'")
    page.wait_for_timeout(1000)  # tiles in, home animation over
    assert any(url.endswith("/tiles.dzi") for url, _ in tiles)
    assert any("/tiles_files/" in url for url, _ in tiles) and all(status == 200 for _, status in tiles), tiles
    fit = int(page.inner_text(".zoom-label").rstrip("%"))
    page.keyboard.press("2")  # truck

    # the image fills the viewer's width or height at "home", centred
    viewer = page.locator("[data-testid=tiled-viewer]").bounding_box()
    assert viewer is not None
    scale = min(viewer["width"] / W, viewer["height"] / H)
    left = viewer["x"] + (viewer["width"] - W * scale) / 2
    top = viewer["y"] + (viewer["height"] - H * scale) / 2
    assert abs(scale * 100 - fit) <= 2, (scale, fit)
    page.mouse.move(left + 1000 * scale, top + 600 * scale)
    page.mouse.down()
    page.mouse.move(left + 1500 * scale, top + 900 * scale, steps=8)
    page.mouse.move(left + 2000 * scale, top + 1200 * scale, steps=8)
    page.mouse.up()
    page.wait_for_selector(".ann-row")
    page.wait_for_selector("[data-testid=save-state]:text('Saved')")
    with web_server.client() as c:
        image = c.get(f"/api/projects/{slug}/images").json()["items"][0]
        deadline = time.monotonic() + 10
        anns: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not anns:
            anns = c.get(f"/api/projects/{slug}/images/{image['id']}/annotations").json()
            time.sleep(0.2)
    assert (image["width"], image["height"]) == (W, H)
    assert len(anns) == 1 and anns[0]["label"] == "truck"
    tolerance = 3 / scale  # a few screen pixels
    for got, want in zip(anns[0]["bbox"], (1000, 600, 2000, 1200), strict=True):
        assert abs(got - want) < tolerance, anns[0]["bbox"]
    shot(page, "08-annotate-big")

    page.keyboard.press("+")  # the toolbar's zoom works on the tiled viewer too
    page.wait_for_function(f"() => parseInt(document.querySelector('.zoom-label').textContent) > {fit}")
    assert re.fullmatch(r"\d+%", page.inner_text(".zoom-label"))
    assert elsewhere == []
