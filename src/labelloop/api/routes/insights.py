"""What to do next: suggestions (latest suggest job, less the images labelled since), QA findings (latest qa
job), the effort report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from labelloop.api import responses as rs
from labelloop.api.deps import Project, ServerState, state
from labelloop.jobs.records import latest_output, list_jobs

router = APIRouter(prefix="/api/projects/{slug}", tags=["insights"])
State = Annotated[ServerState, Depends(state)]


def _latest(st: ServerState, slug: str, kind: str, key: str) -> dict[str, Any]:
    output = latest_output(st.store, slug, kind) or {}
    pending = [j for j in list_jobs(st.store, project=slug, kind=kind, limit=5) if j["status"] in ("queued", "running")]
    last = list_jobs(st.store, project=slug, kind=kind, limit=1)
    return {key: output.get(key, []), "job": output.get("job"), "pending": pending[0] if pending else None,
            "last": last[0] if last else None, "note": output.get("note")}


@router.get("/suggestions", response_model=rs.LatestSuggestions,
            summary="The latest suggestions: images worth annotating next, with reasons")
def suggestions(slug: str, ctx: Project, st: State) -> dict[str, Any]:
    from labelloop.services.suggest import still_unlabelled

    latest = _latest(st, slug, "suggest", "suggestions")
    return {**latest, "suggestions": still_unlabelled(ctx, latest["suggestions"])}


@router.get("/qa", response_model=rs.LatestIssues, summary="The latest QA findings: likely label errors")
def qa(slug: str, ctx: Project, st: State) -> dict[str, Any]:
    return _latest(st, slug, "qa", "issues")


@router.get("/effort", response_model=rs.Effort, summary="Human time spent and saved by the model")
def effort(ctx: Project) -> Any:
    from labelloop.services.effort import effort_report

    return effort_report(ctx)
