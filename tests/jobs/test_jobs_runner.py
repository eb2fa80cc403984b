"""The executor-independent parts of the job system, in-process on a temp SQLite file."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import fake_kinds  # noqa: F401  (registers sleepy, boom, crash)

from labelloop.errors import ConfigError, InvalidInputError
from labelloop.jobs import cancel_job, execute_job, get_job, get_job_kind, register_job_kind
from labelloop.jobs.records import create_job, requeue_interrupted
from labelloop.store.db import Store, sqlite_url
from labelloop.store.tables import Job


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(sqlite_url(tmp_path / "server.db"))
    yield s
    s.dispose()


def _no_project(slug: str):  # type: ignore[no-untyped-def]
    raise AssertionError("these jobs do not open a project")


def test_registry_refuses_duplicates_and_unknown_kinds() -> None:
    assert get_job_kind("sleepy").target == "fake_kinds:sleepy"
    register_job_kind("sleepy", "fake_kinds:sleepy")  # the same registration again is fine
    with pytest.raises(ConfigError, match="registered already"):
        register_job_kind("sleepy", "fake_kinds:boom")
    with pytest.raises(InvalidInputError, match="unknown job kind"):
        get_job_kind("nope")
    assert get_job_kind("train").target == "labelloop.jobs.kinds:train"


def test_success_progress_and_events(store: Store) -> None:
    job_id = create_job(store, "sleepy", {"steps": 3, "seconds": 0.01}, project_id=None, actor="ana")
    assert execute_job(store, job_id, _no_project) == "succeeded"
    job = get_job(store, job_id, events=True, log=True)
    assert job["progress"] == 1.0 and job["output"] == {"steps": 3, "message": "slept 3 steps"}
    assert [e["type"] for e in job["events"]] == ["start", "step", "step", "step", "end"]
    assert [e["seq"] for e in job["events"]] == [1, 2, 3, 4, 5]
    assert "started by ana" in job["log"]
    assert execute_job(store, job_id, _no_project) == "skipped"  # a job runs once


def test_failures_are_recorded_with_reasons(store: Store) -> None:
    boom = create_job(store, "boom", {}, project_id=None, actor="x")
    assert execute_job(store, boom, _no_project) == "failed"
    assert get_job(store, boom)["error"] == "the fake job failed on purpose (nothing to fix: this is a test)"
    crash = create_job(store, "crash", {}, project_id=None, actor="x")
    execute_job(store, crash, _no_project)
    job = get_job(store, crash, log=True)
    assert job["error"].startswith("internal error: ZeroDivisionError") and "Traceback" in job["log"]


def test_cancel_queued_and_running(store: Store) -> None:
    queued = create_job(store, "sleepy", {}, project_id=None, actor="x")
    assert cancel_job(store, queued)["status"] == "cancelled"
    assert execute_job(store, queued, _no_project) == "skipped"
    running = create_job(store, "sleepy", {"steps": 500, "seconds": 0.01}, project_id=None, actor="x")
    result: list[str] = []
    worker = threading.Thread(target=lambda: result.append(execute_job(store, running, _no_project)))
    worker.start()
    while get_job(store, running)["status"] != "running":
        time.sleep(0.02)
    cancel_job(store, running)
    worker.join(10)
    assert result == ["cancelled"] and get_job(store, running)["progress"] < 1.0
    with pytest.raises(InvalidInputError, match="cancelled already"):
        cancel_job(store, running)


def test_interrupted_jobs_are_requeued(store: Store) -> None:
    a = create_job(store, "sleepy", {}, project_id=None, actor="x")
    b = create_job(store, "sleepy", {}, project_id=None, actor="x")
    with store.session() as s:
        for job_id, cancel in ((a, False), (b, True)):
            row = s.get(Job, job_id)
            row.status, row.cancel_requested = "running", cancel
    assert requeue_interrupted(store) == [a]
    assert get_job(store, a)["status"] == "queued" and get_job(store, b)["status"] == "cancelled"


def test_a_job_works_on_the_layer_it_was_started_on(store: Store, tmp_path: Path) -> None:
    from labelloop.jobs.runner import JobContext
    from labelloop.services.layers import add_layer
    from labelloop.store.project import init_project

    ctx = init_project(tmp_path / "proj", task="regions", labels=["tumour"])
    try:
        add_layer(ctx, "cells", "detect", parent="regions", labels=["cell"])
        on = {layer: JobContext(store, 1, "sleepy", {"project": "p", "layer": layer}, "t", lambda _: ctx).project()
              for layer in ("cells", "regions", "")}
        assert (on["cells"].layer, on["cells"].task) == ("cells", "detect") and on["cells"].id != ctx.id
        assert on["regions"] is ctx and on[""] is ctx  # a job from before layers: the first layer
    finally:
        ctx.close()
