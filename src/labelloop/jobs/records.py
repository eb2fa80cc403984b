"""Job rows: create, read, list, cancel. Shared by every executor, the API and the worker."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.store.db import Store
from labelloop.store.tables import Job, utcnow

__all__ = ["FINAL_STATES", "cancel_job", "create_job", "get_job", "job_view", "latest_output", "list_jobs",
           "requeue_interrupted"]

FINAL_STATES = ("succeeded", "failed", "cancelled")


def job_view(job: Job, *, events: bool = False, log: bool = False) -> dict[str, Any]:
    result = dict(job.result or {})
    view: dict[str, Any] = {
        "id": job.id, "kind": job.kind, "project": (job.params or {}).get("project"),
        "params": {k: v for k, v in (job.params or {}).items() if k != "project"},
        "status": job.status, "progress": job.progress, "message": job.message, "error": job.error,
        "cancel_requested": job.cancel_requested, "created_by": job.created_by,
        "created_at": job.created_at.isoformat() if job.created_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "output": result.get("output"), "event_count": len(result.get("events", [])),
    }
    if events:
        view["events"] = result.get("events", [])
    if log:
        view["log"] = job.log or ""
    return view


def create_job(store: Store, kind: str, params: dict[str, Any], *, project_id: int | None,
               actor: str) -> int:
    with store.session() as s:
        job = Job(kind=kind, params=params, project_id=project_id, created_by=actor, status="queued",
                  message="waiting for the worker", result={})
        s.add(job)
        s.flush()
        return job.id


def get_job(store: Store, job_id: int, *, project: str | None = None, events: bool = False,
            log: bool = False) -> dict[str, Any]:
    with store.session() as s:
        job = s.get(Job, job_id)
        if job is None or (project is not None and (job.params or {}).get("project") != project):
            raise NotFoundError(f"no job {job_id}" + (f" in project {project!r}" if project else ""))
        return job_view(job, events=events, log=log)


def list_jobs(store: Store, *, project: str | None = None, kind: str | None = None, status: str | None = None,
              limit: int = 50) -> list[dict[str, Any]]:
    """Newest first. Jobs name their project in ``params`` (an external project lives in another
    database), so the project filter runs over the newest rows here."""
    limit = max(1, min(limit, 500))
    with store.session() as s:
        q = select(Job).order_by(Job.id.desc())
        if kind:
            q = q.where(Job.kind == kind)
        if status:
            q = q.where(Job.status == status)
        out: list[dict[str, Any]] = []
        for job in s.scalars(q.limit(limit * 20 if project else limit)):
            if project is None or (job.params or {}).get("project") == project:
                out.append(job_view(job))
            if len(out) >= limit:
                break
        return out


def cancel_job(store: Store, job_id: int, *, project: str | None = None) -> dict[str, Any]:
    """A queued job is cancelled at once; a running one is asked to stop (its stop event is set)."""
    get_job(store, job_id, project=project)
    with store.session() as s:
        result: Any = s.execute(update(Job).where(Job.id == job_id, Job.status == "queued").values(
            status="cancelled", cancel_requested=True, message="cancelled before it started",
            finished_at=utcnow()))
        done = result.rowcount
        if not done:
            job = s.get(Job, job_id)
            if job is not None and job.status in FINAL_STATES:
                raise InvalidInputError(f"job {job_id} has {job.status} already", "nothing to cancel")
            s.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True,
                                                                  message="stopping…"))
    return get_job(store, job_id)


def requeue_interrupted(store: Store) -> list[int]:
    """Jobs left ``running`` by a stopped worker go back to ``queued`` (or ``cancelled`` when that
    was asked for); returns the ids to enqueue again."""
    with store.session() as s:
        rows = s.scalars(select(Job).where(Job.status == "running")).all()
        ids = []
        for job in rows:
            if job.cancel_requested:
                job.status, job.message, job.finished_at = "cancelled", "cancelled while the server stopped", utcnow()
                continue
            job.status = "queued"
            job.message = "requeued after a server restart"
            job.log = (job.log or "") + "-- the server stopped during this job; it runs again --\n"
            ids.append(job.id)
        return ids


def latest_output(store: Store, project: str, kind: str) -> dict[str, Any] | None:
    """The output of the project's newest succeeded job of ``kind`` (e.g. the latest suggestions)."""
    for view in list_jobs(store, project=project, kind=kind, status="succeeded", limit=1):
        with store.session() as s:
            job = s.get(Job, view["id"])
            if job is not None:
                return {**((job.result or {}).get("output") or {}), "job": job_view(job)}
    return None
