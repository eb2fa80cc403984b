"""Job kinds for tests of the queue mechanics, loaded by the server and the worker through
``LABELLOOP_JOB_PLUGINS=fake_kinds`` (with this folder on PYTHONPATH)."""

from __future__ import annotations

import time
from typing import Any

from labelloop.errors import JobError
from labelloop.jobs import JobContext, register_job_kind

__all__ = ["boom", "crash", "sleepy"]


def sleepy(job: JobContext) -> dict[str, Any]:
    """``steps`` steps of ``seconds`` each, reporting progress and an event per step."""
    steps = int(job.params.get("steps", 5))
    seconds = float(job.params.get("seconds", 0.1))
    job.event({"type": "start", "epochs": 1, "steps_per_epoch": steps})
    for i in range(1, steps + 1):
        time.sleep(seconds)
        job.event({"type": "step", "epoch": 1, "step": i, "steps": steps, "loss": 1.0 / i})
        job.progress(i / steps, f"step {i}/{steps}")  # raises JobCancelled once cancelled
    job.event({"type": "end", "reason": "done", "best_epoch": 1})
    return {"steps": steps, "message": f"slept {steps} steps"}


def boom(job: JobContext) -> dict[str, Any]:
    job.progress(0.5, "about to fail")
    raise JobError("the fake job failed on purpose", "nothing to fix: this is a test")


def crash(job: JobContext) -> dict[str, Any]:
    return {"value": 1 // int(job.params.get("zero", 0))}


register_job_kind("sleepy", "fake_kinds:sleepy", title="Sleep (test)")
register_job_kind("boom", "fake_kinds:boom", title="Fail (test)")
register_job_kind("crash", "fake_kinds:crash", title="Crash (test)")
