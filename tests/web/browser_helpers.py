"""Shared by the browser tests: where chromium is, where screenshots go, logging in."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from live_server import ADMIN_PASSWORD

CHROMIUM = os.environ.get("LABELLOOP_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


def shot(page: Any, name: str) -> None:
    """Save a screenshot of ``page`` as artifacts/screenshots/NAME.png (git-ignored)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(300)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def log_in(page: Any, url: str, username: str = "admin", password: str | None = None) -> None:
    """Log in through the login form and wait for the projects page (a page of the same module that
    is logged in already, the browser being shared, stays as it is)."""
    page.goto(url + "/")
    form = page.locator("input[name=username]")
    form.or_(page.get_by_text("New project")).first.wait_for()
    if not form.count():
        return
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=New project")


def until(fetch: Callable[[], Any], ok: Callable[[Any], bool], seconds: float = 10) -> Any:
    """Poll the API until ``ok(fetch())`` (autosave is asynchronous); the last value either way."""
    deadline = time.monotonic() + seconds
    value = fetch()
    while not ok(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = fetch()
    return value


def image_point(page: Any, width: int) -> Callable[[float, float], tuple[float, float]]:
    """``at(x, y)``: the screen position of image pixel ``(x, y)`` in the page's canvas image."""
    box = page.locator(".canvas-img").bounding_box()
    assert box is not None
    scale = box["width"] / width

    def at(x: float, y: float) -> tuple[float, float]:
        return box["x"] + x * scale, box["y"] + y * scale

    return at
