"""The job queue through a real server and its worker: progress (SSE), cancel, failure reasons,
and jobs that survive a server restart. Uses the fake kinds of tests/jobs/fake_kinds.py."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, wait_for_job


def _start(client: httpx.Client, project: str, kind: str, **params) -> dict:
    r = client.post(f"/api/projects/{project}/jobs", json={"kind": kind, "params": params})
    assert r.status_code == 201, r.text
    return r.json()


def _read_sse(client: httpx.Client, url: str) -> list[tuple[str, dict]]:
    events, name = [], None
    with client.stream("GET", url, timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line[6:])))
                if name == "end":
                    break
    return events


def test_progress_streams_to_the_end(admin: httpx.Client, project: str) -> None:
    job = _start(admin, project, "sleepy", steps=6, seconds=0.15)
    assert job["status"] == "queued" and job["created_by"] == "admin"
    events = _read_sse(admin, f"/api/projects/{project}/jobs/{job['id']}/events")
    steps = [e for name, e in events if name == "progress" and e["type"] == "step"]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert events[-1] == ("end", {"status": "succeeded", "error": None})
    done = admin.get(f"/api/projects/{project}/jobs/{job['id']}").json()
    assert done["progress"] == 1.0 and done["output"]["steps"] == 6 and done["message"] == "slept 6 steps"
    assert "sleepy job" in admin.get(f"/api/projects/{project}/jobs/{job['id']}/log").text
    resumed = _read_sse(admin, f"/api/projects/{project}/jobs/{job['id']}/events?since=7")
    assert [e["type"] for n, e in resumed if n == "progress"] == ["end"]
    assert job["id"] in [j["id"] for j in admin.get(f"/api/projects/{project}/jobs").json()]


def test_cancel_a_running_job(admin: httpx.Client, project: str) -> None:
    job = _start(admin, project, "sleepy", steps=200, seconds=0.05)
    wait_for_job(admin, project, job["id"], until=("running",))
    r = admin.post(f"/api/projects/{project}/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["cancel_requested"]
    done = wait_for_job(admin, project, job["id"])
    assert done["status"] == "cancelled" and done["progress"] < 1.0
    again = admin.post(f"/api/projects/{project}/jobs/{job['id']}/cancel")
    assert again.status_code == 422 and "cancelled already" in again.json()["message"]


def test_failures_have_readable_reasons(admin: httpx.Client, project: str) -> None:
    boom = wait_for_job(admin, project, _start(admin, project, "boom")["id"])
    assert boom["status"] == "failed"
    assert boom["error"] == "the fake job failed on purpose (nothing to fix: this is a test)"
    crash = wait_for_job(admin, project, _start(admin, project, "crash")["id"])
    assert crash["status"] == "failed" and crash["error"] == "internal error: ZeroDivisionError: integer division " \
                                                             "or modulo by zero"
    train = wait_for_job(admin, project, _start(admin, project, "train", args="epochs=1")["id"], timeout=120)
    assert train["status"] == "failed" and train["error"] and "Traceback" not in train["error"]
    unknown = admin.post(f"/api/projects/{project}/jobs", json={"kind": "mine-bitcoin"})
    assert unknown.status_code == 422 and "sleepy" in unknown.json()["hint"]
    assert admin.get(f"/api/projects/{project}/jobs/999999").status_code == 404


def test_sweep_takes_the_documented_variants_or_a_grid(admin: httpx.Client, project: str) -> None:
    url = f"/api/projects/{project}/jobs"
    for params, message in [({}, "either a grid or a list of variants"),
                            ({"grid": "lr=0.01", "variants": ["lr=0.01"]}, "not both"),
                            ({"variants": "lr=0.01"}, "list of argument strings"),
                            ({"variants": ["epochz=3"]}, "unknown training argument 'epochz'"),
                            ({"grid": "lr=fast,0.1"}, "lr")]:
        r = admin.post(url, json={"kind": "sweep", "params": params})
        assert r.status_code == 422 and message in r.json()["message"], (params, r.text)
    # the documented form is accepted and reaches training (this project has nothing labelled to train on)
    job = wait_for_job(admin, project, _start(admin, project, "sweep", variants=["epochs=1", "epochs=2"],
                                              args="image_size=96")["id"], timeout=120)
    assert job["error"] is None or "grid" not in job["error"]
    assert job["status"] in ("succeeded", "failed") and "Traceback" not in (job["error"] or "")


@pytest.mark.timeout(240)
def test_jobs_survive_a_server_restart(tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "home").start()
    try:
        client = server.client()
        client.post("/api/projects", json={"name": "restart"})
        running = _start(client, "restart", "sleepy", steps=30, seconds=0.1)
        queued = _start(client, "restart", "sleepy", steps=2, seconds=0.01)
        wait_for_job(client, "restart", running["id"], until=("running",))
        server.stop()  # the worker dies with the server mid-job; the second job is still on the queue
        time.sleep(0.5)
        server.start()
        client = server.client()
        first = wait_for_job(client, "restart", running["id"], timeout=90)
        second = wait_for_job(client, "restart", queued["id"], timeout=90)
        assert (first["status"], second["status"]) == ("succeeded", "succeeded")
        assert "runs again" in client.get(f"/api/projects/restart/jobs/{running['id']}/log").text
    finally:
        server.stop()
