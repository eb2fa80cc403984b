"""Scripted review of model proposals: accept the confident, reject the hopeless.

Every decision goes through :func:`labelloop.services.annotations.review_annotation`, so the
history holds the reviewer, the time and the before/after of each proposal. Events are
stamped with the round of the model that made the proposal (for effort accounting).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from labelloop.core.progress import StageProgress
from labelloop.core.records import ReviewState
from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.services.annotations import review_annotation
from labelloop.services.preannotate import default_actor
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, TrainedModel

__all__ = ["open_proposals", "review_proposals"]



def _check(value: float | None, name: str) -> None:
    if value is not None and not 0.0 <= value <= 1.0:
        raise InvalidInputError(f"{name} must be a score in [0, 1], got {value}")


def open_proposals(ctx: ProjectContext, *, image_id: int | None = None, model_id: int | None = None
                   ) -> list[tuple[int, float | None, int | None, int]]:
    """``(annotation_id, score, model_id, image_id)`` of the proposals nobody reviewed yet."""
    with ctx.store.session() as s:
        q = select(Annotation.id, Annotation.score, Annotation.model_id, Annotation.image_id).where(
            Annotation.project_id == ctx.id, Annotation.review_state == ReviewState.PROPOSED).order_by(Annotation.id)
        if image_id is not None:
            img = s.get(Image, image_id)
            if img is None or img.project_id != ctx.id:
                raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
            q = q.where(Annotation.image_id == image_id)
        if model_id is not None:
            model = s.get(TrainedModel, model_id)
            if model is None or model.project_id != ctx.id:
                raise NotFoundError(f"model {model_id} is not in project {ctx.name!r}", "see `labelloop models list`")
            q = q.where(Annotation.model_id == model_id)
        return [(a, sc, m, i) for a, sc, m, i in s.execute(q).all()]


def _rounds(ctx: ProjectContext) -> dict[int, int]:
    with ctx.store.session() as s:
        return dict(s.execute(select(TrainedModel.id, TrainedModel.round).where(
            TrainedModel.project_id == ctx.id)).all())


def review_proposals(ctx: ProjectContext, *, accept_above: float | None = None, reject_below: float | None = None,
                     image_id: int | None = None, model_id: int | None = None, reviewer: str | None = None,
                     progress: StageProgress | None = None) -> dict[str, Any]:
    """Accept proposals scoring >= ``accept_above`` and reject those < ``reject_below``.

    Returns ``{"reviewer", "accepted", "rejected", "left", "images"}`` (``left``: proposals
    still open in the selection; ``images``: images whose proposals were decided).
    """
    if accept_above is None and reject_below is None:
        raise InvalidInputError("nothing to do: give --accept-above and/or --reject-below",
                                "e.g. `labelloop review --accept-above 0.9 --reject-below 0.2`")
    _check(accept_above, "--accept-above")
    _check(reject_below, "--reject-below")
    if accept_above is not None and reject_below is not None and reject_below > accept_above:
        raise InvalidInputError(f"--reject-below {reject_below} is above --accept-above {accept_above}",
                                "a proposal cannot be both accepted and rejected")
    actor = reviewer or default_actor()
    rounds = _rounds(ctx)
    todo = open_proposals(ctx, image_id=image_id, model_id=model_id)
    accepted = rejected = 0
    images: set[int] = set()
    for n, (ann_id, score, mid, img_id) in enumerate(todo, 1):
        s = score if score is not None else 0.0
        action = "accept" if accept_above is not None and s >= accept_above else \
            "reject" if reject_below is not None and s < reject_below else None
        if action:
            review_annotation(ctx, ann_id, action, actor=actor, round_=rounds.get(mid) if mid else None)
            accepted += action == "accept"
            rejected += action == "reject"
            images.add(img_id)
        if progress:
            progress("review", n, len(todo))
    return {"reviewer": actor, "accepted": accepted, "rejected": rejected,
            "left": len(todo) - accepted - rejected, "images": len(images)}
