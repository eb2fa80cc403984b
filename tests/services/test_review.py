"""Scripted review: decisions by score, each in the history with the reviewer and the time."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.services.annotations import AnnotationInput, create_annotation, image_annotations
from labelloop.services.review import review_proposals
from labelloop.store.tables import AnnotationEvent
from selection.loopkit import add_fake_model, demo_with_truth, image_ids


def test_accept_above_reject_below_recorded_with_reviewer(tmp_path):
    ctx, _ = demo_with_truth(tmp_path / "p", n_images=6, labelled=3)
    m = add_fake_model(ctx, ["circle", "square", "triangle"], round_=3)
    iid = image_ids(ctx)["shapes_0004.jpg"]
    made = [create_annotation(ctx, iid, AnnotationInput(label="circle", bbox=(10 * k, 10, 10 * k + 8, 18), score=s),
                              actor=f"model:{m}", source=f"model:{m}", model_id=m)
            for k, s in enumerate([0.95, 0.91, 0.5, 0.1])]
    human = create_annotation(ctx, iid, AnnotationInput(label="square", bbox=(1, 30, 20, 50)), actor="ann")
    result = review_proposals(ctx, accept_above=0.9, reject_below=0.2, reviewer="alice")
    assert result == {"reviewer": "alice", "accepted": 2, "rejected": 1, "left": 1, "images": 1}
    states = {a["id"]: a["review_state"] for a in image_annotations(ctx, iid, include_rejected=True)}
    assert [states[a["id"]] for a in made] == ["accepted", "accepted", "proposed", "rejected"]
    assert states[human["id"]] is None
    with ctx.store.session() as s:
        events = s.scalars(select(AnnotationEvent).where(AnnotationEvent.actor == "alice")).all()
        assert sorted(e.action for e in events) == ["accept", "accept", "reject"]
        assert all(e.at is not None and e.actor_kind == "human" and e.round == 3 for e in events)
        assert all(e.before["review_state"] == "proposed" for e in events)
    assert review_proposals(ctx, accept_above=0.4, image_id=iid)["accepted"] == 1  # default reviewer: the OS user
    ctx.close()


def test_review_arguments_are_checked(tmp_path):
    ctx, _ = demo_with_truth(tmp_path / "p", n_images=4, labelled=2)
    with pytest.raises(InvalidInputError, match="nothing to do"):
        review_proposals(ctx)
    with pytest.raises(InvalidInputError, match="above --accept-above"):
        review_proposals(ctx, accept_above=0.3, reject_below=0.6)
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        review_proposals(ctx, accept_above=3)
    with pytest.raises(NotFoundError, match="model 9999 is not in project"):
        review_proposals(ctx, accept_above=0.9, model_id=9999)
    ctx.close()
