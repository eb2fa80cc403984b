"""End to end with a real Label Studio: a project over uploaded images is connected to labelloop as
its ML backend; a person's annotation reaches labelloop; Label Studio's prediction action stores
labelloop's boxes, scores and model version (checked in what Label Studio *stored*, not in the
action's answer, which says success even when a backend fails); "Start Training" queues a
training job on labelloop's worker."""

from __future__ import annotations

import base64
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from integrations.label_studio_server import ENV, TOKEN, LabelStudio

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from live_server import LiveServer

pytestmark = pytest.mark.slow
pytest.importorskip("onnxruntime")

CONFIG = """<View>
  <Image name="img" value="$image"/>
  <RectangleLabels name="shape" toName="img">
    <Label value="circle"/><Label value="square"/><Label value="triangle"/>
  </RectangleLabels>
</View>"""


@pytest.fixture(scope="module")
def label_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabelStudio]:
    binary = os.environ.get(ENV)
    if not binary or not Path(binary).is_file():
        pytest.skip(f"{ENV} is not set to a label-studio executable (scripts/test-services.sh installs one)")
    server = LabelStudio(Path(binary), tmp_path_factory.mktemp("ls")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def labelloop(tmp_path_factory: pytest.TempPathFactory, label_studio: LabelStudio) -> Iterator[tuple[LiveServer, str]]:
    from labelloop.services.demo import create_demo_project
    from labelloop.services.training import train_project

    folder = tmp_path_factory.mktemp("ll") / "shapes"
    ctx, _ = create_demo_project(folder, n_images=24, labelled=16, seed=3)
    try:  # a small model that finds the shapes (a 1-epoch one proposes nothing above its thresholds)
        train_project(ctx, args="epochs=8;image_size=160;batch_size=4")
    finally:
        ctx.close()
    srv = LiveServer(tmp_path_factory.mktemp("ll-home") / "home", projects=[folder], extra_env={
        "LABELLOOP_LABEL_STUDIO_URL": label_studio.url, "LABELLOOP_LABEL_STUDIO_TOKEN": TOKEN}).start()
    yield srv, folder.name
    srv.stop()


def _until(fetch: Any, ok: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = fetch()
        if ok(value):
            return value
        time.sleep(0.5)
    raise AssertionError(f"{what}: never as expected, last {value}")


def test_label_studio_gets_predictions_and_sends_annotations(label_studio: LabelStudio,
                                                             labelloop: tuple[LiveServer, str]) -> None:
    server, slug = labelloop
    with server.client() as admin:
        token = admin.post("/api/auth/tokens", json={"name": "label studio"}).json()["token"]
        unlabelled = admin.get(f"/api/projects/{slug}/images", params={"status": "new"}).json()["items"][:3]
        files = {f"file{i}": (img["file_name"], admin.get(f"/api/projects/{slug}/images/{img['id']}/file").content,
                              "image/jpeg") for i, img in enumerate(unlabelled)}
    with label_studio.client() as ls:
        project = ls.post("/api/projects/", json={"title": "shapes", "label_config": CONFIG,
                                                  "show_collab_predictions": False}).json()
        pid = project["id"]
        imported = ls.post(f"/api/projects/{pid}/import", params={"return_task_ids": "true"}, files=files)
        assert imported.status_code == 201, imported.text
        tasks = ls.get("/api/tasks/", params={"project": pid}).json()["tasks"]
        assert len(tasks) == 3 and all(t["data"]["image"].startswith("/data/upload/") for t in tasks)

        # connect labelloop: Label Studio calls /health and /setup before it saves the backend
        backend = ls.post("/api/ml/", json={
            "url": f"{server.url}/ls/{slug}", "project": pid, "title": "labelloop", "auth_method": "BASIC_AUTH",
            "basic_auth_user": "admin", "basic_auth_pass": token})
        assert backend.status_code == 201, backend.text
        ml_id = backend.json()["id"]
        assert backend.json()["state"] == "CO", backend.json()
        basic = base64.b64encode(f"admin:{token}".encode()).decode()
        hooks = ls.get("/api/webhooks/", params={"project": pid}).json()
        hook = next(h for h in hooks if h["url"].endswith(f"/ls/{slug}/webhook"))
        assert ls.patch(f"/api/webhooks/{hook['id']}/", json={"url": hook["url"],
                        "headers": {"Authorization": f"Basic {basic}"}}).status_code == 200

        # a person annotates the first task in Label Studio: labelloop stores it as a human annotation
        first = tasks[0]
        region = {"from_name": "shape", "to_name": "img", "type": "rectanglelabels", "original_width": 320,
                  "original_height": 240, "value": {"x": 10, "y": 10, "width": 20, "height": 25, "rotation": 0,
                                                    "rectanglelabels": ["square"]}}
        made = ls.post(f"/api/tasks/{first['id']}/annotations/", json={"result": [region]})
        assert made.status_code == 201, made.text
        with httpx.Client(base_url=f"{server.url}/ls/{slug}", headers={"Authorization": f"Basic {basic}"}) as c:
            status = _until(lambda: c.get("/status").json(), lambda s: s["events"] >= 1, what="the webhook")
        assert status["last_error"] is None, status

        # Label Studio's own action asks labelloop for predictions; check what it stored
        action = ls.post("/api/dm/actions/", params={"id": "retrieve_tasks_predictions", "project": pid},
                         json={"selectedItems": {"all": False, "included": [t["id"] for t in tasks]}})
        assert action.status_code == 200, action.text
        stored = [p for t in tasks for p in ls.get("/api/predictions/", params={"task": t["id"]}).json()]
        assert len(stored) == 3, stored
        versions = {p["model_version"] for p in stored}
        assert len(versions) == 1 and next(iter(versions)).startswith(f"labelloop-{slug}-model-")
        regions = [r for p in stored for r in p["result"]]
        assert regions, "the tiny model proposed nothing on three images"
        assert all(r["from_name"] == "shape" and r["to_name"] == "img" and r["type"] == "rectanglelabels"
                   for r in regions)
        assert all(0 <= r["value"]["x"] <= 100 and 0 < r["value"]["width"] <= 100 and 0 < r["score"] <= 1
                   for r in regions)
        assert all(p["score"] is not None for p in stored)

        # "Start Training" in Label Studio: labelloop queues a training job on its worker
        assert ls.post(f"/api/ml/{ml_id}/train").status_code == 200
    with server.client() as admin:
        jobs = _until(lambda: admin.get(f"/api/projects/{slug}/jobs", params={"kind": "train"}).json(),
                      lambda js: len(js) == 1, what="the training job")
        admin.post(f"/api/projects/{slug}/jobs/{jobs[0]['id']}/cancel")  # its run is not this test's subject
        anns = [a for img in unlabelled for a in admin.get(f"/api/projects/{slug}/images/{img['id']}/annotations")
                .json() if a["author"].startswith("labelstudio:")]
    assert [(a["label"], a["source"]) for a in anns] == [("square", "human")]
    assert anns[0]["attributes"]["labelstudio"]["task"] == first["id"]
