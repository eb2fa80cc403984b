"""Editing a segmentation in a real browser keeps its shape: relabelling (a number key) keeps every ring
and the mask, dragging the shape moves all of them, and a reshaped ring keeps the other rings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from browser_helpers import image_point, log_in, until
from live_server import LiveServer, png_bytes

from labelloop.core.geometry import mask_to_rle, rle_to_mask

pytestmark = [pytest.mark.browser, pytest.mark.slow]
W, H = 320, 240
RINGS = [[40, 40, 120, 40, 120, 120, 40, 120], [200, 150, 260, 150, 260, 200, 200, 200]]


def test_relabel_and_drag_keep_every_ring_and_the_mask(page: Any, web_server: LiveServer) -> None:
    mask = np.zeros((H, W), np.uint8)
    mask[40:120, 40:120] = mask[150:200, 200:260] = 1
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Shapes", "labels": ["cat", "dog"],
                                             "task": "segment"}).json()["slug"]
        files = [("files", ("cells.png", png_bytes(H, W, seed=4), "image/png"))]
        image_id = c.post(f"/api/projects/{slug}/images", files=files).json()["added"][0]["id"]
        made = c.post(f"/api/projects/{slug}/images/{image_id}/annotations",
                      json={"label": "cat", "polygons": RINGS, "rle": mask_to_rle(mask)})
        assert made.status_code == 201, made.text
        ann_id = made.json()["id"]

        def ann() -> dict[str, Any]:
            return c.get(f"/api/projects/{slug}/images/{image_id}").json()["annotations"][0]

        log_in(page, web_server.url)
        page.goto(f"{web_server.url}/#/p/{slug}/annotate/{image_id}")
        page.wait_for_selector(".ann-row")
        page.wait_for_timeout(500)
        at = image_point(page, W)

        # relabel with the class key: the label changes, the geometry does not
        page.click(".ann-row")
        page.wait_for_selector(".ann-row.selected")
        page.keyboard.press("2")
        relabelled = until(ann, lambda a: a["label"] == "dog")
        assert relabelled["label"] == "dog" and relabelled["polygons"] == RINGS
        assert relabelled["rle"] == made.json()["rle"]

        # select the shape on the canvas, then drag it by 20 x 10 image pixels: every ring and the mask move
        page.mouse.click(*at(80, 80))
        page.wait_for_timeout(300)
        page.mouse.move(*at(80, 80))
        page.mouse.down()
        page.mouse.move(*at(90, 85), steps=5)
        page.mouse.move(*at(100, 90), steps=5)
        page.mouse.up()
        page.keyboard.press("Escape")  # let go of the shape: the edit is committed
        moved = until(ann, lambda a: a["version"] > relabelled["version"])
        dx, dy = moved["bbox"][0] - 40, moved["bbox"][1] - 40
        assert abs(dx - 20) < 3 and abs(dy - 10) < 3
        assert len(moved["polygons"]) == 2
        for old, new in zip(RINGS, moved["polygons"], strict=True):
            assert np.allclose(np.array(new) - np.array(old), [dx, dy] * (len(old) // 2), atol=0.6)
        m = rle_to_mask(moved["rle"])
        assert m.sum() == pytest.approx(mask.sum(), rel=0.05) and m[60 + round(dy), 60 + round(dx)] == 1
        assert moved["id"] == ann_id and moved["label"] == "dog"

        # reshape ring 0 (drag its bottom-right corner): the other ring stays where it is
        cx, cy = 120 + dx, 120 + dy
        page.mouse.click(*at(80 + dx, 80 + dy))
        page.wait_for_timeout(300)
        page.mouse.move(*at(cx, cy))
        page.mouse.down()
        page.mouse.move(*at(cx + 8, cy + 8), steps=5)
        page.mouse.move(*at(cx + 15, cy + 15), steps=5)
        page.mouse.up()
        page.keyboard.press("Escape")
        reshaped = until(ann, lambda a: a["version"] > moved["version"])
        assert reshaped["version"] > moved["version"] and len(reshaped["polygons"]) == 2
        assert reshaped["polygons"][1] == moved["polygons"][1]
        assert reshaped["polygons"][0] != moved["polygons"][0] and max(reshaped["polygons"][0][0::2]) > cx + 10


def test_a_damaged_upload_is_flagged_and_filterable(page: Any, web_server: LiveServer) -> None:
    import io

    from PIL import Image as PILImage

    buf = io.BytesIO()
    PILImage.fromarray(np.random.default_rng(3).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(buf, "JPEG")
    truncated = buf.getvalue()[: len(buf.getvalue()) * 2 // 3]
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Damaged", "labels": ["cat"]}).json()["slug"]
        files = [("files", ("whole.png", png_bytes(H, W, seed=5), "image/png")),
                 ("files", ("cut.jpg", truncated, "image/jpeg"))]
        added = c.post(f"/api/projects/{slug}/images", files=files).json()["added"]
        assert [a["damaged"] is not None for a in added] == [False, True]
        assert c.get(f"/api/projects/{slug}/images", params={"damaged": "true"}).json()["items"][0]["file_name"] \
            == "cut.jpg"
    log_in(page, web_server.url)  # logged in already after the module's first test; run alone, it logs in
    page.goto(f"{web_server.url}/#/p/{slug}/annotate/{added[1]['id']}")
    page.wait_for_selector("[data-testid=damaged]")
    assert "truncated" in (page.get_attribute("[data-testid=damaged]", "title") or "")
    page.select_option("select.small", "damaged")
    page.wait_for_selector(".thumb-damaged")
    assert page.locator(".thumb").count() == 1
