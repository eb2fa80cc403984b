"""Layers in a real browser: the home page lists them, the top bar switches between them; the regions
layer paints a tumour with the brush, and the cells layer (inside it) shows that region under its own
boxes and saves them in its own layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from browser_helpers import image_point, log_in, shot, until
from live_server import LiveServer, png_bytes

pytestmark = [pytest.mark.browser, pytest.mark.slow]
W, H = 320, 240


def test_layer_switcher_region_brush_and_child_boxes(page: Any, web_server: LiveServer, tmp_path: Path) -> None:
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Tissue", "task": "regions", "labels": ["tumour"]}).json()["slug"]
        c.post(f"/api/projects/{slug}/layers", json={"name": "cells", "kind": "detect", "parent": "regions",
                                                    "labels": ["cell"]}).raise_for_status()
        c.post(f"/api/projects/{slug}/images",
               files=[("files", ("slide.png", png_bytes(H, W, seed=5), "image/png"))]).raise_for_status()
        ids = {layer: c.get(f"/api/projects/{slug}/images", params={"layer": layer}).json()["items"][0]["id"]
               for layer in ("regions", "cells")}

        def annotations(layer: str) -> list[dict[str, Any]]:
            return c.get(f"/api/projects/{slug}/images/{ids[layer]}/annotations", params={"layer": layer}).json()

        log_in(page, web_server.url)
        page.goto(f"{web_server.url}/#/p/{slug}")
        page.wait_for_selector("[data-testid=layers] [data-testid=layer-cells]")
        assert "inside regions" in page.inner_text("[data-testid=layer-cells]")
        page.wait_for_selector("[data-testid=layer-switcher]")

        # the regions layer: paint the tumour (class 2; 1 is the background) with the brush
        page.goto(f"{web_server.url}/#/p/{slug}/annotate/{ids['regions']}")
        page.wait_for_selector(".a9s-annotationlayer")
        page.wait_for_timeout(500)
        at = image_point(page, W)
        page.keyboard.press("u")
        page.keyboard.press("2")
        page.mouse.move(*at(40, 60))
        page.mouse.down()
        for x in range(40, 161, 20):
            page.mouse.move(*at(x, 60 + (x - 40) // 2), steps=3)
        page.mouse.up()
        painted = until(lambda: annotations("regions"), lambda a: len(a) == 1)
        assert len(painted) == 1 and painted[0]["label"] == "tumour" and painted[0]["rle"]["size"] == [H, W]
        x1, y1, x2, y2 = painted[0]["bbox"]
        assert x1 < 40 < 160 < x2 and y1 < 60 and y2 > 120  # the stroke, with the brush's width
        assert painted[0]["polygons"]  # its outline: what the canvas shows
        page.wait_for_selector("[data-testid=save-state]:text('Saved')")
        shot(page, "10-layers-region-brush")

        # switch to the cells layer: no brush, the tumour drawn under it, a box saved in this layer only
        page.select_option("[data-testid=layer-switcher]", "cells")  # the annotate page again, on its first image
        page.wait_for_selector("[data-testid=parent-note]:text('inside the regions of regions')")
        page.wait_for_selector(".a9s-annotationlayer")
        page.wait_for_timeout(500)
        assert page.locator("[data-tool=brush]").count() == 0
        at = image_point(page, W)
        page.keyboard.press("b")
        page.mouse.move(*at(60, 70))
        page.mouse.down()
        page.mouse.move(*at(75, 85), steps=5)
        page.mouse.move(*at(90, 100), steps=5)
        page.mouse.up()
        cells = until(lambda: annotations("cells"), lambda a: len(a) == 1)
        assert [a["label"] for a in cells] == ["cell"]
        assert [a["label"] for a in annotations("regions")] == ["tumour"]  # the parent layer is untouched
        shot(page, "11-layers-child-boxes-over-parent-region")
        page.goto(f"{web_server.url}/#/p/{slug}")  # the choice holds: the home page is on cells now
        page.wait_for_selector("[data-testid=layers] .layer-row.current[data-testid=layer-cells]")


def test_rename_and_delete_a_layer_from_the_home_page(page: Any, web_server: LiveServer) -> None:
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Slides", "task": "regions", "labels": ["tumour"]}).json()["slug"]
        for body in ({"name": "cells", "kind": "detect", "parent": "regions", "labels": ["cell"]},
                     {"name": "zones", "kind": "regions", "labels": ["zone"]},
                     {"name": "dots", "kind": "detect", "parent": "zones", "labels": ["dot"]}):
            c.post(f"/api/projects/{slug}/layers", json=body).raise_for_status()

        def names() -> list[str]:
            return [layer["name"] for layer in c.get(f"/api/projects/{slug}/layers").json()]

        log_in(page, web_server.url)
        page.goto(f"{web_server.url}/#/p/{slug}")
        page.wait_for_selector("[data-testid=layer-cells] [data-testid=layer-rename]")
        # the first layer is the project itself: renamed, never deleted; a parent only after its children
        assert page.locator("[data-testid=layer-regions] [data-testid=layer-delete]").count() == 0
        assert page.locator("[data-testid=layer-zones] [data-testid=layer-delete]").is_disabled()
        assert "delete dots first" in (page.get_attribute("[data-testid=layer-zones] [data-testid=layer-delete]",
                                                          "title") or "")

        page.click("[data-testid=layer-cells] [data-testid=layer-rename]")
        page.fill("[data-testid=layer-cells] [data-testid=layer-new-name]", "nuclei")
        page.keyboard.press("Enter")
        page.wait_for_selector("[data-testid=layer-nuclei]")
        assert until(names, lambda n: "nuclei" in n) == ["regions", "nuclei", "zones", "dots"]

        # work on nuclei, then delete it: the page asks first, then goes back to the first layer
        page.click("[data-testid=layer-nuclei] a")
        page.wait_for_selector("[data-testid=layers] .layer-row.current[data-testid=layer-nuclei]")
        page.click("[data-testid=layer-nuclei] [data-testid=layer-delete]")
        assert "The images stay" in page.inner_text("[data-testid=layer-nuclei] .layer-actions")
        assert "nuclei" in names()  # nothing is deleted before the second click
        page.click("[data-testid=layer-nuclei] [data-testid=layer-delete-confirm]")
        page.wait_for_selector("[data-testid=layers] .layer-row.current[data-testid=layer-regions]")
        assert page.locator("[data-testid=layer-nuclei]").count() == 0
        assert names() == ["regions", "zones", "dots"]
        shot(page, "12-layers-rename-delete")
