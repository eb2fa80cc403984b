"""Running one job, whatever executes it: claim the row, call the kind's function with a
:class:`JobContext`, record progress, log, events and the outcome (a readable reason on failure).

Progress is written at most every :data:`FLUSH_SECONDS` (and always on a structured event that
ends an epoch or the run), so a chatty training loop does not hammer the database. Cancellation
is cooperative: a watcher polls ``cancel_requested`` and sets :attr:`JobContext.stop_event`;
:meth:`JobContext.progress` raises :class:`JobCancelled` once it is set (``raise_on_cancel``).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from sqlalchemy import update

from labelloop.errors import LabelloopError
from labelloop.jobs.registry import get_job_kind
from labelloop.store.db import Store
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Job, utcnow

__all__ = ["FLUSH_SECONDS", "JobCancelled", "JobContext", "execute_job"]

FLUSH_SECONDS = 0.5
MAX_STEP_EVENTS = 600
MAX_LOG_CHARS = 200_000
log = logging.getLogger("labelloop.jobs")


class JobCancelled(Exception):
    """Raised inside a job when a user cancelled it; the runner records ``cancelled``."""


class JobContext:
    """What a job function gets: its params, its project, progress/log/event reporting, a stop event."""

    def __init__(self, store: Store, job_id: int, kind: str, params: dict[str, Any], actor: str,
                 open_project: Callable[[str], ProjectContext]) -> None:
        self.store = store
        self.job_id = job_id
        self.kind = kind
        self.params = params
        self.actor = actor
        self.stop_event = threading.Event()
        self.raise_on_cancel = True
        self._open_project = open_project
        self._lock = threading.Lock()
        self._progress = 0.0
        self._message = "started"
        self._log: list[str] = []
        self._events: list[dict[str, Any]] = []
        self._seq = 0
        self._dirty = False
        self._last_flush = 0.0

    # -- what job functions call -------------------------------------------------------------
    def project(self) -> ProjectContext:
        """The job's project, on the layer it was started on (``params["layer"]``; default: the first)."""
        from labelloop.services.layers import layer_context

        slug = self.params.get("project")
        if not slug:
            raise LabelloopError(f"job {self.kind} needs a project", "start it from a project")
        ctx = self._open_project(str(slug))
        return layer_context(ctx, self.params.get("layer") or None, default_first=True)

    def progress(self, fraction: float | None = None, message: str | None = None) -> None:
        """Report ``fraction`` in [0, 1] and/or a one-line ``message``."""
        with self._lock:
            if fraction is not None:
                self._progress = min(1.0, max(0.0, float(fraction)))
            if message is not None:
                self._message = message[:500]
            self._dirty = True
        self.flush()
        self.check_cancelled()

    def log(self, line: str) -> None:
        with self._lock:
            self._log.append(line.rstrip("\n")[:2000])
            self._dirty = True
        self.flush()

    def event(self, event: dict[str, Any]) -> None:
        """A structured progress event (the training callback's dicts), streamed to the browser."""
        with self._lock:
            self._seq += 1
            self._events.append({**event, "seq": self._seq})
            if event.get("type") == "step":
                self._thin_steps()
            self._dirty = True
        self.flush(force=event.get("type") in ("start", "epoch", "end"))

    def check_cancelled(self) -> None:
        if self.stop_event.is_set() and self.raise_on_cancel:
            raise JobCancelled()

    # -- bookkeeping ---------------------------------------------------------------------------
    def _thin_steps(self) -> None:
        steps = [i for i, e in enumerate(self._events) if e.get("type") == "step"]
        if len(steps) > MAX_STEP_EVENTS:
            drop = set(steps[1:-1:2])  # every other step, keeping the first and the latest
            self._events = [e for i, e in enumerate(self._events) if i not in drop]

    def flush(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            if not self._dirty or (not force and now - self._last_flush < FLUSH_SECONDS):
                return
            values: dict[str, Any] = {"progress": self._progress, "message": self._message,
                                      "result": {"events": list(self._events)}}
            if self._log:
                values["log"] = Job.log + ("\n".join(self._log) + "\n")
                self._log = []
            self._dirty = False
            self._last_flush = now
        with self.store.session() as s:
            s.execute(update(Job).where(Job.id == self.job_id).values(**values))

    def snapshot_events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)


def _claim(store: Store, job_id: int) -> Job | None:
    with store.session() as s:
        result: Any = s.execute(update(Job).where(Job.id == job_id, Job.status == "queued").values(
            status="running", started_at=utcnow(), message="started", error=None))
        return s.get(Job, job_id) if result.rowcount else None


def _watch_cancel(store: Store, job: JobContext, done: threading.Event) -> None:
    while not done.wait(FLUSH_SECONDS):
        with store.session() as s:
            row = s.get(Job, job.job_id)
            if row is None or row.cancel_requested:
                job.stop_event.set()
                return


class _JobLogHandler(logging.Handler):
    """Copies log records emitted by the job's own thread into the job's log."""

    def __init__(self, job: JobContext) -> None:
        super().__init__(logging.INFO)
        self.job = job
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread == self.thread and not record.name.startswith("sqlalchemy"):
            self.job.log(self.format(record))


def _finish(store: Store, job: JobContext, status: str, *, output: dict[str, Any] | None = None,
            error: str | None = None, message: str) -> None:
    job.flush(force=True)
    with store.session() as s:
        row = s.get(Job, job.job_id)
        if row is None:
            return  # the project (and its jobs) was deleted meanwhile
        row.status = status
        row.message = message
        row.error = error
        row.finished_at = utcnow()
        if status == "succeeded":
            row.progress = 1.0
        row.result = {"events": job.snapshot_events(), "output": output}
        if len(row.log or "") > MAX_LOG_CHARS:
            row.log = "…\n" + row.log[-MAX_LOG_CHARS:]


def execute_job(store: Store, job_id: int, open_project: Callable[[str], ProjectContext]) -> str:
    """Run job ``job_id`` to its end; returns its final status. Never raises for a job's own failure."""
    row = _claim(store, job_id)
    if row is None:
        log.info("job %s is not queued any more (cancelled or run already): skipped", job_id)
        return "skipped"
    job = JobContext(store, row.id, row.kind, dict(row.params or {}), row.created_by, open_project)
    done = threading.Event()
    watcher = threading.Thread(target=_watch_cancel, args=(store, job, done), daemon=True)
    watcher.start()
    handler = _JobLogHandler(job)
    logging.getLogger().addHandler(handler)
    try:
        func = get_job_kind(row.kind).load()
        job.log(f"{row.kind} job {row.id} started by {row.created_by or 'unknown'}")
        output = func(job) or {}
        if job.stop_event.is_set():
            _finish(store, job, "cancelled", output=output, message="cancelled")
            return "cancelled"
        _finish(store, job, "succeeded", output=output, message=str(output.get("message", "done")))
        return "succeeded"
    except JobCancelled:
        _finish(store, job, "cancelled", message="cancelled")
        return "cancelled"
    except LabelloopError as err:
        job.log(f"failed: {err}")
        _finish(store, job, "failed", error=str(err), message="failed")
        return "failed"
    except Exception as exc:  # a bug in a job must not kill the worker; its reason is shown to the user
        job.log(traceback.format_exc())
        _finish(store, job, "failed", error=f"internal error: {type(exc).__name__}: {exc}", message="failed")
        return "failed"
    finally:
        done.set()
        logging.getLogger().removeHandler(handler)
