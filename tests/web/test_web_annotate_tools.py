"""The annotate page's other tools in a real browser: a training region (T), a polygon of the class
chosen with a number key (P, 2) drawn inside that region, and deleting the selected shape with Delete."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_helpers import image_point, log_in, shot, until
from live_server import LiveServer, png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
W, H = 320, 240


def test_region_polygon_class_keys_and_delete(page: Any, web_server: LiveServer, tmp_path: Path) -> None:
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Tools", "labels": ["cat", "dog"]}).json()["slug"]
    path = tmp_path / "street.png"
    path.write_bytes(png_bytes(H, W, seed=21))
    log_in(page, web_server.url)
    page.goto(f"{web_server.url}/#/p/{slug}/annotate")
    page.wait_for_selector("text=No images yet")
    page.set_input_files("[data-testid=upload-input]", str(path))
    page.wait_for_selector(".a9s-annotationlayer")
    page.wait_for_timeout(500)
    at = image_point(page, W)

    with web_server.client() as c:
        image_id = c.get(f"/api/projects/{slug}/images").json()["items"][0]["id"]

        def detail() -> dict[str, Any]:
            return c.get(f"/api/projects/{slug}/images/{image_id}").json()

        # a training region, dragged from (20, 20) to (200, 150) in image pixels
        page.keyboard.press("t")
        page.mouse.move(*at(20, 20))
        page.mouse.down()
        page.mouse.move(*at(100, 80), steps=6)
        page.mouse.move(*at(200, 150), steps=6)
        page.mouse.up()
        page.wait_for_selector("text=1 training region(s)")
        regions = until(detail, lambda d: len(d["regions"]) == 1)["regions"]
        assert len(regions) == 1
        xs, ys = regions[0][0::2], regions[0][1::2]
        assert abs(min(xs) - 20) < 4 and abs(max(xs) - 200) < 4 and abs(min(ys) - 20) < 4 and abs(max(ys) - 150) < 4
        assert until(detail, lambda d: not d["annotations"])["annotations"] == []  # a region is not an object

        # a polygon of the second class ("2" = dog): click three corners, close on the first
        page.keyboard.press("Escape")  # let go of the region (a new shape is selected for editing)
        page.keyboard.press("p")
        page.keyboard.press("2")
        corners = [(60, 60), (140, 70), (100, 130)]
        for x, y in corners:
            page.mouse.click(*at(x, y))
            page.wait_for_timeout(150)
        page.mouse.click(*at(*corners[0]))
        page.wait_for_selector(".ann-row")
        page.wait_for_selector("[data-testid=save-state]:text('Saved')")
        anns = until(detail, lambda d: len(d["annotations"]) == 1)["annotations"]
        assert len(anns) == 1 and anns[0]["label"] == "dog"
        ring = anns[0]["polygons"][0]
        assert len(ring) >= 6
        x1, y1, x2, y2 = anns[0]["bbox"]
        assert abs(x1 - 60) < 4 and abs(y1 - 60) < 4 and abs(x2 - 140) < 4 and abs(y2 - 130) < 4
        shot(page, "03b-annotate-region-polygon")

        # in polygon mode clicks add corners, so pick the shape from the list; Delete removes it, the region stays
        page.click(".ann-row")
        page.wait_for_selector(".ann-row.selected")
        page.keyboard.press("Delete")
        page.wait_for_selector("text=Nothing yet")
        after = until(detail, lambda d: not d["annotations"])
        assert after["annotations"] == [] and len(after["regions"]) == 1

        # keys typed into a form field are text, not shortcuts: no class, tool or image changes
        page.fill(".add-class input", "")
        page.focus(".add-class input")
        page.keyboard.type("1b")
        page.keyboard.press("ArrowRight")
        assert page.input_value(".add-class input") == "1b"
        assert page.get_attribute(".class-item.active", "data-class") == "dog"
        assert "active" in (page.get_attribute("[data-tool=polygon]", "class") or "")
        # out of the field, the same keys are shortcuts again
        page.click(".image-title")
        page.keyboard.press("1")
        page.keyboard.press("b")
        assert page.get_attribute(".class-item.active", "data-class") == "cat"
        assert "active" in (page.get_attribute("[data-tool=rectangle]", "class") or "")
