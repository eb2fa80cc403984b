"""Executors: where jobs run. The interface is ``submit(kind, params) -> job_id`` and
``cancel(job_id)``; the job row (status, progress, log) is the same whoever runs it.

:class:`HueyExecutor` puts jobs on a persistent SQLite queue that the local worker process
(``python -m labelloop.jobs.worker``) consumes; a Ray executor would implement ``_dispatch``
with ``ray.remote(execute_job)`` and nothing else changes.
"""

from __future__ import annotations

import abc
import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from labelloop.jobs.records import cancel_job, create_job
from labelloop.jobs.registry import get_job_kind
from labelloop.store.db import Store

__all__ = ["TASK_NAME", "Executor", "HueyExecutor", "make_huey"]

TASK_NAME = "labelloop.run_job"


class Executor(abc.ABC):
    """Creates the job row, then hands the job id to whatever runs it."""

    #: what the train page says jobs run on
    name = "local worker"

    def __init__(self, store: Store) -> None:
        self.store = store

    def resources(self) -> dict[str, float]:
        """What jobs can use: ``CPU``, ``GPU`` (and a cluster's custom resources)."""
        return {"CPU": float(os.cpu_count() or 1), "GPU": float(_local_gpus())}

    def submit(self, kind: str, params: dict[str, Any], *, project_id: int | None = None, actor: str = "") -> int:
        get_job_kind(kind)  # unknown kinds fail here, before a row exists
        job_id = create_job(self.store, kind, params, project_id=project_id, actor=actor)
        self._dispatch(job_id)
        return job_id

    def cancel(self, job_id: int, *, project: str | None = None) -> dict[str, Any]:
        return cancel_job(self.store, job_id, project=project)

    def close(self) -> None:  # noqa: B027  (most executors hold nothing)
        """Let go of what the executor holds (a cluster connection); jobs already queued stay queued."""

    @abc.abstractmethod
    def _dispatch(self, job_id: int) -> None:
        """Make job ``job_id`` run eventually (it is ``queued`` in the database)."""


@functools.cache
def _local_gpus() -> int:
    """NVIDIA GPUs on this machine (``nvidia-smi -L``), without importing torch into the server."""
    tool = shutil.which("nvidia-smi")
    if tool is None:
        return 0
    try:
        out = subprocess.run([tool, "-L"], capture_output=True, text=True, timeout=10, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def _run_job_task(job_id: int) -> None:
    from labelloop.jobs.worker import run_in_worker

    run_in_worker(job_id)


def make_huey(queue_path: Path) -> tuple[Any, Any]:
    """The persistent queue (one SQLite file) and its one task; the server enqueues, the worker consumes."""
    from huey import SqliteHuey

    queue_path.parent.mkdir(parents=True, exist_ok=True)
    huey = SqliteHuey(name="labelloop", filename=str(queue_path), results=False)
    task = huey.task(name=TASK_NAME)(_run_job_task)
    return huey, task


class HueyExecutor(Executor):
    def __init__(self, store: Store, queue_path: Path) -> None:
        super().__init__(store)
        self.huey, self._task = make_huey(queue_path)

    def _dispatch(self, job_id: int) -> None:
        self._task(job_id)  # calling a Huey task enqueues it
