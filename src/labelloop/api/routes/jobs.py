"""Jobs: start (train, sweep, preannotate, suggest, qa), follow (server-sent events), cancel, logs."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from labelloop.api import responses as rs
from labelloop.api.deps import CurrentUser, Id, Project, ServerState, permission, state
from labelloop.api.schemas import JobIn
from labelloop.jobs.params import check_job_params
from labelloop.jobs.records import FINAL_STATES, get_job, list_jobs
from labelloop.jobs.registry import get_job_kind, job_kinds
from labelloop.services import users
from labelloop.services.users import UserInfo

router = APIRouter(tags=["jobs"])
State = Annotated[ServerState, Depends(state)]
POLL_SECONDS = 0.4
HEARTBEAT_SECONDS = 15.0


@router.get("/api/jobs/kinds", response_model=list[rs.JobKind], summary="The job kinds this server runs")
def kinds(_: CurrentUser) -> list[dict[str, Any]]:
    return [{"name": k.name, "title": k.title, "permission": k.permission} for k in job_kinds()]


@router.get("/api/executor", response_model=rs.ExecutorInfo,
            summary="Where jobs run and what they can use (the train page's resources)")
def executor(_: CurrentUser, st: State) -> dict[str, Any]:
    resources = st.executor.resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    return {"name": st.executor.name, "resources": resources, "max_clones": max(1, gpus or cpus)}


@router.get("/api/jobs", response_model=list[rs.Job], response_model_exclude_unset=True,
            summary="Recent jobs of every project (administrators)")
def all_jobs(_: Annotated[UserInfo, Depends(permission("users.manage"))], st: State,
             status: str | None = None, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    return list_jobs(st.store, status=status, limit=limit)


@router.get("/api/projects/{slug}/jobs", response_model=list[rs.Job], response_model_exclude_unset=True,
            summary="The project's jobs, newest first")
def project_jobs(slug: str, ctx: Project, st: State, kind: str | None = None, status: str | None = None,
                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[dict[str, Any]]:
    return list_jobs(st.store, project=slug, kind=kind, status=status, limit=limit)




@router.post("/api/projects/{slug}/jobs", response_model=rs.Job, response_model_exclude_unset=True, status_code=201,
             summary="Start a job")
def start_job(slug: str, body: JobIn, ctx: Project, user: CurrentUser, st: State) -> dict[str, Any]:
    kind = get_job_kind(body.kind)
    users.require(user, kind.permission)
    params = {**check_job_params(kind.name, dict(body.params)), "project": slug, "layer": ctx.layer_ref}
    project_id = ctx.project_id if ctx.store is st.store else None  # an external project lives in another database
    job_id = st.executor.submit(kind.name, params, project_id=project_id, actor=user.username)
    return get_job(st.store, job_id)


@router.get("/api/projects/{slug}/jobs/{job_id}", response_model=rs.Job, response_model_exclude_unset=True,
            summary="A job; with events=true its progress events")
def one_job(slug: str, job_id: Id, ctx: Project, st: State, events: bool = False) -> dict[str, Any]:
    return get_job(st.store, job_id, project=slug, events=events)


@router.post("/api/projects/{slug}/jobs/{job_id}/cancel", response_model=rs.Job, response_model_exclude_unset=True,
             summary="Cancel a job (a running one stops cleanly)")
def cancel(slug: str, job_id: Id, ctx: Project, user: CurrentUser, st: State) -> dict[str, Any]:
    job = get_job(st.store, job_id, project=slug)
    if job["created_by"] != user.username:
        users.require(user, "review")  # reviewers and admins may stop other people's jobs
    return st.executor.cancel(job_id, project=slug)


@router.get("/api/projects/{slug}/jobs/{job_id}/log", response_class=PlainTextResponse, summary="The job's log")
def job_log(slug: str, job_id: Id, ctx: Project, st: State) -> PlainTextResponse:
    return PlainTextResponse(get_job(st.store, job_id, project=slug, log=True)["log"])


def _sse(event: str, data: Any, event_id: int | None = None) -> str:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, default=str)}\n\n"


@router.get("/api/projects/{slug}/jobs/{job_id}/events", summary="Progress as server-sent events",
            response_class=StreamingResponse)
async def job_events(slug: str, job_id: Id, request: Request, ctx: Project, st: State,
                     since: Annotated[int, Query(ge=0, description="last event seq you have")] = 0,
                     last_event_id: Annotated[str | None, Header()] = None) -> StreamingResponse:
    """Events: ``job`` (status/progress/message whenever they change), ``progress`` (each training
    event, with its ``seq`` as the SSE id, so a reconnect resumes), ``end`` when the job is over."""
    if last_event_id and last_event_id.isdigit():
        since = max(since, int(last_event_id))
    await run_in_threadpool(get_job, st.store, job_id, project=slug)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        seen = since
        last_state: tuple[Any, ...] | None = None
        last_beat = time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            if await request.is_disconnected():
                return
            view = await run_in_threadpool(get_job, st.store, job_id, events=True)
            for event in view.pop("events"):
                if event.get("seq", 0) > seen:
                    seen = event["seq"]
                    yield _sse("progress", event, seen)
            current = (view["status"], view["progress"], view["message"], view["error"], view["cancel_requested"])
            if current != last_state:
                last_state = current
                yield _sse("job", view)
            if view["status"] in FINAL_STATES:
                yield _sse("end", {"status": view["status"], "error": view["error"]})
                return
            if time.monotonic() - last_beat > HEARTBEAT_SECONDS:
                last_beat = time.monotonic()
                yield ": keep-alive\n\n"
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
