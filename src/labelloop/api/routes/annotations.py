"""Annotations: list, draw, edit (optimistic concurrency: a stale ``version`` answers 409), delete,
review proposals, accept all on an image, and the review queue."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from labelloop.api import responses as rs
from labelloop.api.deps import MAX_ID, Id, Project, ServerState, permission, state
from labelloop.api.schemas import AcceptAllIn, AnnotationIn, AnnotationUpdateIn, ClickIn, ReviewIn
from labelloop.services import annotations as ann_service
from labelloop.services.annotations import AnnotationInput
from labelloop.services.images import review_queue
from labelloop.services.users import UserInfo, can

router = APIRouter(prefix="/api/projects/{slug}", tags=["annotations"])
State = Annotated[ServerState, Depends(state)]
Annotator = Annotated[UserInfo, Depends(permission("annotate"))]
Reviewer = Annotated[UserInfo, Depends(permission("review"))]


def _input(body: AnnotationIn) -> AnnotationInput:
    return AnnotationInput(label=body.label, bbox=body.bbox, polygons=body.polygons, rle=body.rle,
                           attributes=body.attributes, outline=body.outline)


@router.get("/images/{image_id}/annotations", response_model=list[rs.Annotation],
            summary="An image's annotations and proposals")
def list_annotations(image_id: Id, ctx: Project, include_rejected: bool = False) -> list[dict[str, Any]]:
    return ann_service.image_annotations(ctx, image_id, include_rejected=include_rejected)


@router.post("/images/{image_id}/annotations", response_model=rs.Annotation, status_code=201,
             summary="Draw an annotation")
def create_annotation(image_id: Id, body: AnnotationIn, ctx: Project, user: Annotator) -> dict[str, Any]:
    return ann_service.create_annotation(ctx, image_id, _input(body), actor=user.username)


@router.post("/images/{image_id}/click", response_model=rs.Annotation, status_code=201,
             summary="Click-to-box: the model's best candidate at a point becomes an annotation")
def click(image_id: Id, body: ClickIn, ctx: Project, user: Annotator) -> dict[str, Any]:
    from labelloop.services.click import click_to_box

    return click_to_box(ctx, image_id, body.x, body.y, actor=user.username, label=body.label, model_id=body.model_id)


@router.post("/images/{image_id}/candidates", response_model=rs.WarmCandidates,
             summary="Compute and cache the model's candidates (makes clicks instant)")
def warm_candidates(image_id: Id, ctx: Project, user: Annotator,
                    model_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> dict[str, Any]:
    from labelloop.services.click import warm_candidates as warm

    return warm(ctx, image_id, model_id=model_id)


@router.patch("/annotations/{annotation_id}", response_model=rs.Annotation,
              summary="Move, reshape or relabel (send the version you loaded)")
def update_annotation(annotation_id: Id, body: AnnotationUpdateIn, ctx: Project, user: Annotator) -> dict[str, Any]:
    return ann_service.update_annotation(ctx, annotation_id, _input(body), actor=user.username,
                                         expected_version=body.version, may_review=can(user, "review"))


@router.delete("/annotations/{annotation_id}", response_model=rs.Ok, summary="Delete an annotation")
def delete_annotation(annotation_id: Id, ctx: Project, user: Annotator,
                      version: int | None = None) -> dict[str, Any]:
    ann_service.delete_annotation(ctx, annotation_id, actor=user.username, expected_version=version)
    return {"ok": True}


@router.post("/annotations/{annotation_id}/review", response_model=rs.Annotation,
             summary="Accept or reject a model proposal")
def review(annotation_id: Id, body: ReviewIn, ctx: Project, user: Reviewer) -> dict[str, Any]:
    return ann_service.review_annotation(ctx, annotation_id, body.action, actor=user.username,
                                         expected_version=body.version)


@router.post("/images/{image_id}/accept-all", response_model=rs.AcceptedCount,
             summary="Accept every open proposal on an image")
def accept_all(image_id: Id, body: AcceptAllIn, ctx: Project, user: Reviewer) -> dict[str, Any]:
    n = ann_service.accept_all(ctx, image_id, actor=user.username, min_score=body.min_score)
    return {"accepted": n}


@router.get("/review-queue", response_model=rs.ReviewQueue,
            summary="Images with open proposals, by confidence or suggestion rank")
def get_review_queue(slug: str, ctx: Project, st: State,
                     sort: Annotated[Literal["confidence", "-confidence", "rank", "id"], Query()] = "confidence",
                     min_score: Annotated[float | None, Query(ge=0, le=1)] = None,
                     max_score: Annotated[float | None, Query(ge=0, le=1)] = None,
                     limit: Annotated[int, Query(ge=1, le=500)] = 200) -> dict[str, Any]:
    rank = None
    if sort == "rank":
        from labelloop.jobs.records import latest_output

        output = latest_output(st.store, slug, "suggest")
        rank = [s["image_id"] for s in (output or {}).get("suggestions", []) if "image_id" in s]
    return review_queue(ctx, sort=sort, min_score=min_score, max_score=max_score, limit=limit, rank=rank)

