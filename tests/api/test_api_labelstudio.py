"""The Label Studio ML backend routes on a live server (``/ls/<project>/...``) with the request
shapes Label Studio 1.23 sends: authentication (basic auth with an API token, the password, or a
bearer token), clear 4xx errors that store nothing, protocol answers, and webhooks answered at
once with the work done after (annotations pulled from a stand-in Label Studio, training queued)."""

from __future__ import annotations

import base64
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from live_server import ADMIN_PASSWORD, LiveServer, png_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from integrations.fake_label_studio import CONFIG, LEGACY_TOKEN, FakeLabelStudio, rect

IMAGE = "/data/upload/1/ab12cd34-street.png"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLabelStudio]:
    server = FakeLabelStudio(files={IMAGE: png_bytes(60, 80, seed=5)}).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, fake: FakeLabelStudio) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path_factory.mktemp("ls") / "home", extra_env={
        "LABELLOOP_LABEL_STUDIO_URL": fake.url, "LABELLOOP_LABEL_STUDIO_TOKEN": LEGACY_TOKEN}).start()
    yield srv
    srv.stop()
    assert not srv.contract_errors()


@pytest.fixture(scope="module")
def backend(server: LiveServer) -> Iterator[tuple[httpx.Client, str]]:
    """Label Studio's view of the backend: basic auth with the admin's name and an API token."""
    with server.client() as admin:
        slug = admin.post("/api/projects", json={"name": "from ls", "labels": ["circle", "square"]}).json()["slug"]
        token = admin.post("/api/auth/tokens", json={"name": "label studio"}).json()["token"]
    basic = base64.b64encode(f"admin:{token}".encode()).decode()
    with httpx.Client(base_url=f"{server.url}/ls/{slug}", timeout=30,
                      headers={"Authorization": f"Basic {basic}", "User-Agent": "heartex/1.23.2"}) as c:
        yield c, slug


def _status(c: httpx.Client, until: Any, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = c.get("/status").json()
        if until(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"status never became what was expected: {status}")


def test_every_kind_of_credentials_and_none(server: LiveServer, backend: tuple[httpx.Client, str]) -> None:
    c, slug = backend
    health = c.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "UP"
    url = f"{server.url}/ls/{slug}/health"
    password = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    assert httpx.get(url, headers={"Authorization": f"Basic {password}"}).status_code == 200
    for header in (None, "Basic " + base64.b64encode(b"admin:ll_wrong").decode(), "Basic !!",
                   "Basic " + base64.b64encode(b"admin:wrong-password").decode()):
        r = httpx.get(url, headers={"Authorization": header} if header else {})
        assert r.status_code == 401, (header, r.text)
        assert r.json()["error"] == "NotAuthenticated" and r.json()["message"]
    assert httpx.get(f"{server.url}/ls/no-such-project/health", headers=c.headers).status_code == 404


def test_setup_and_predict_speak_the_protocol(backend: tuple[httpx.Client, str]) -> None:
    c, _ = backend
    bad = c.post("/setup", json={"project": "1.1718100000", "schema": "<View><Image"})
    assert bad.status_code == 422 and "not valid XML" in bad.json()["message"]
    assert c.get("/status").json()["label_studio_project"] is None  # nothing stored
    assert c.post("/setup", json={"project": "1.1718100000"}).status_code == 422  # schema missing
    ok = c.post("/setup", json={"project": "1.1718100000", "schema": CONFIG, "hostname": "http://localhost:8080",
                                "access_token": "abc", "extra_params": None, "model_version": "ignored"})
    assert ok.status_code == 200, ok.text
    assert ok.json()["unknown_labels"] == ["hexagon"] and ok.json()["model_version"] == "labelloop-untrained"
    tasks = [{"id": 1, "data": {"image": IMAGE}, "project": 1}, {"id": 2, "data": {"image": IMAGE}, "project": 1}]
    r = c.post("/predict", json={"tasks": tasks, "project": "1.1718100000", "label_config": CONFIG,
                                 "params": {"login": None, "password": None, "context": None}})
    assert r.status_code == 200
    assert r.json() == {"results": [{"result": [], "score": 0.0, "model_version": "labelloop-untrained"}] * 2}
    assert c.post("/predict", json={"tasks": "nope"}).status_code == 422
    assert c.get("/versions").json() == {"versions": ["labelloop-untrained"]}


def test_webhooks_answer_at_once_and_pull_the_annotation(server: LiveServer,
                                                         backend: tuple[httpx.Client, str]) -> None:
    c, slug = backend
    before = c.get("/status").json()["events"]
    region = rect(8, 6, 30, 20, "circle", 80, 60)
    r = c.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 1},
                                 "task": {"id": 4, "data": {"image": IMAGE}, "project": 1},
                                 "annotation": {"id": 12, "result": [region], "task": 4, "completed_by": 1}})
    assert r.status_code == 201 and r.json() == {"status": "accepted", "action": "ANNOTATION_CREATED"}
    status = _status(c, lambda s: s["events"] > before)
    assert status["last_error"] is None and status["images_seen"] == 1
    with server.client() as admin:
        page = admin.get(f"/api/projects/{slug}/images").json()
        assert [i["file_name"] for i in page["items"]] == ["ab12cd34-street.png"]
        anns = admin.get(f"/api/projects/{slug}/images/{page['items'][0]['id']}/annotations").json()
    assert [(a["label"], a["author"], a["source"]) for a in anns] == [("circle", "labelstudio:1", "human")]
    assert anns[0]["bbox"] == pytest.approx([8, 6, 38, 26])


def test_start_training_queues_a_job_on_the_worker(server: LiveServer, fake: FakeLabelStudio,
                                                   backend: tuple[httpx.Client, str]) -> None:
    c, slug = backend
    fake.tasks = [{"id": 4, "data": {"image": IMAGE}, "project": 1,
                   "annotations": [{"id": 12, "result": [rect(8, 6, 30, 20, "square", 80, 60)]}]}]
    before = c.get("/status").json()["events"]
    r = c.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 1, "title": "x"}})
    assert r.status_code == 201
    _status(c, lambda s: s["events"] > before)
    with server.client() as admin:
        jobs = admin.get(f"/api/projects/{slug}/jobs", params={"kind": "train"}).json()
        assert len(jobs) == 1 and jobs[0]["created_by"] == "admin"
        admin.post(f"/api/projects/{slug}/jobs/{jobs[0]['id']}/cancel")  # a real training is not this test's
        image = admin.get(f"/api/projects/{slug}/images").json()["items"][0]
        labels = [a["label"] for a in admin.get(f"/api/projects/{slug}/images/{image['id']}/annotations").json()]
    assert labels == ["square"]  # the export's version of annotation 12 replaced the webhook's


def test_a_layer_is_its_own_backend_under_layers(server: LiveServer, fake: FakeLabelStudio,
                                                 backend: tuple[httpx.Client, str]) -> None:
    c, _ = backend
    with server.client() as admin:
        slug = admin.post("/api/projects", json={"name": "two layers", "labels": ["cell"]}).json()["slug"]
        added = admin.post(f"/api/projects/{slug}/layers", json={"name": "nuclei", "kind": "detect",
                                                                 "labels": ["circle", "square"]})
        assert added.status_code in (200, 201), added.text
    base = f"{server.url}/ls/{slug}"
    first = c.post(f"{base}/setup", json={"project": "2.1718100000", "schema": CONFIG})
    layer = c.post(f"{base}/layers/nuclei/setup", json={"project": "1.1718100000", "schema": CONFIG})
    assert first.status_code == layer.status_code == 200, (first.text, layer.text)
    assert "square" in first.json()["unknown_labels"] and "square" not in layer.json()["unknown_labels"]
    assert c.get(f"{base}/layers/nuclei/status").json()["label_studio_project"] == 1  # each layer its own link
    assert c.get(f"{base}/status").json()["label_studio_project"] == 2
    missing = c.get(f"{base}/layers/nope/health")
    assert missing.status_code == 404 and "nuclei" in missing.json()["hint"]  # the layers there are

    fake.tasks = [{"id": 4, "data": {"image": IMAGE}, "project": 1,
                   "annotations": [{"id": 13, "result": [rect(8, 6, 30, 20, "square", 80, 60)]}]}]
    before = c.get(f"{base}/layers/nuclei/status").json()["events"]
    assert c.post(f"{base}/layers/nuclei/webhook", json={"action": "START_TRAINING",
                                                         "project": {"id": 1}}).status_code == 201
    _status(httpx.Client(base_url=f"{base}/layers/nuclei", headers=c.headers),
            lambda s: s["events"] > before)
    with server.client() as admin:
        jobs = admin.get(f"/api/projects/{slug}/jobs", params={"kind": "train"}).json()
        assert [j["params"]["layer"] for j in jobs] == ["nuclei"]  # the layer's model trains, not the first's
        admin.post(f"/api/projects/{slug}/jobs/{jobs[0]['id']}/cancel")
