"""Shared by the browser tests: where chromium is, where screenshots go, logging in."""

from __future__ import annotations

import os
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
    """Log in through the login form and wait for the projects page."""
    page.goto(url + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password or ADMIN_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=New project")
