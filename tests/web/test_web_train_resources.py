"""The train page says what jobs run on (the executor, its CPUs and GPUs) and lets the user ask
for parallel copies of the model (num_clones) without writing it into the arguments."""

from __future__ import annotations

import os
from typing import Any

import pytest
from browser_helpers import log_in, until
from live_server import LiveServer


def test_the_machine_is_shown_and_num_clones_joins_the_arguments(page: Any, web_server: LiveServer) -> None:
    with web_server.client() as c:
        slug = c.post("/api/projects", json={"name": "Resources", "labels": ["cat"]}).json()["slug"]
        info = c.get("/api/executor").json()
    assert info["name"] == "local worker" and info["resources"]["CPU"] == os.cpu_count()
    assert info["max_clones"] == (int(info["resources"]["GPU"]) or os.cpu_count())
    log_in(page, web_server.url)
    page.goto(f"{web_server.url}/#/p/{slug}/train")
    machine = page.wait_for_selector("[data-testid=executor]").inner_text()
    assert f"local worker: {os.cpu_count()} CPUs" in machine
    assert page.locator("[data-testid=num-clones] option").count() == info["max_clones"]
    if info["max_clones"] < 2:
        pytest.skip("one CPU and no GPU: no parallel copies to ask for")

    def started() -> list[dict[str, Any]]:
        with web_server.client() as c:
            return c.get(f"/api/projects/{slug}/jobs", params={"kind": "train"}).json()

    for given, sent in (("epochs=1;image_size=64", "epochs=1;image_size=64;num_clones=2"),
                        ("epochs=1;num_clones=1", "epochs=1;num_clones=1")):  # the arguments' own value wins
        before = len(started())
        page.fill("[data-testid=train-args]", given)
        page.select_option("[data-testid=num-clones]", "2")
        page.click("[data-testid=start-training]")
        jobs = until(started, lambda js, n=before: len(js) > n)
        assert jobs[0]["params"]["args"] == sent
        with web_server.client() as c:  # the run itself is not this test's subject
            c.post(f"/api/projects/{slug}/jobs/{jobs[0]['id']}/cancel")
        until(lambda: started()[0]["status"], lambda s: s in ("cancelled", "failed", "succeeded"), seconds=60)
        page.reload()
        page.wait_for_selector("[data-testid=start-training]:not([disabled])")
