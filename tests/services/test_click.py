"""Click-to-box through the service: the model's candidate becomes a human annotation with its
provenance and a ``click`` in the history; simulate clicks only when the candidate fits."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import select

from labelloop.core.predictions import Predictions
from labelloop.core.records import AnnotationRecord
from labelloop.errors import NotFoundError
from labelloop.services.annotations import image_annotations
from labelloop.services.click import click_to_box, remember_candidates
from labelloop.services.effort import effort_report
from labelloop.services.simulate import review_with_ground_truth
from labelloop.store.tables import AnnotationEvent
from selection.loopkit import OraclePredictor, add_fake_model, demo_with_truth, image_ids, pixels_of

CLASSES = ["circle", "square", "triangle"]


@pytest.fixture
def project(tmp_path):
    ctx, truth = demo_with_truth(tmp_path / "proj", n_images=8, labelled=4)
    yield ctx, truth, image_ids(ctx)
    ctx.close()


def test_click_adds_the_candidate_as_a_human_annotation(project):
    ctx, _, ids = project
    iid = ids["shapes_0006.jpg"]
    oracle = OraclePredictor(CLASSES)
    oracle.add(pixels_of(ctx, iid), [[10, 10, 30, 30], [12, 12, 60, 60]], [0.2, 0.1], ["square", "circle"])
    m = add_fake_model(ctx, CLASSES)
    ann = click_to_box(ctx, iid, 20, 20, actor="ann", model_id=m, predictor=oracle)
    assert ann["bbox"] == [10, 10, 30, 30] and ann["label"] == "square"  # the model's class when none is active
    assert ann["source"] == "human" and ann["review_state"] is None
    assert ann["attributes"] == {"assisted_by": f"model:{m}", "candidate_score": 0.2}
    # the same point again: the annotated candidate is not picked twice; the next one is
    second = click_to_box(ctx, iid, 20, 20, actor="ann", label="triangle", model_id=m, predictor=oracle)
    assert second["bbox"] == [12, 12, 60, 60] and second["label"] == "triangle"  # the active class wins
    with pytest.raises(NotFoundError, match="no candidate at"):
        click_to_box(ctx, iid, 20, 20, actor="ann", model_id=m, predictor=oracle)
    with ctx.store.session() as s:
        actions = s.scalars(select(AnnotationEvent.action).where(AnnotationEvent.image_id == iid)).all()
    assert actions == ["click", "click"]
    assert effort_report(ctx)["rounds"][-1]["actions"]["click"] == 2
    # the candidates were cached on disk: a new process (no predictor) still answers
    assert (ctx.root / "cache" / "candidates" / f"m{m}" / f"{iid}.json").is_file()


def test_simulated_annotator_clicks_only_when_the_candidate_fits(project):
    ctx, _, ids = project
    iid = ids["shapes_0007.jpg"]
    m = add_fake_model(ctx, CLASSES)
    truth = [AnnotationRecord(label="circle", bbox=(10, 10, 30, 30)),    # candidate fits: click
             AnnotationRecord(label="square", bbox=(50, 10, 70, 30)),    # candidate too loose: draw
             AnnotationRecord(label="triangle", bbox=(10, 50, 30, 70))]  # no candidate: draw
    planted = Predictions(np.array([[11, 10, 30, 31], [45, 5, 80, 40]]), np.array([0.15, 0.1]), np.array([0, 1]))
    remember_candidates(ctx, m, iid, planted)
    done = review_with_ground_truth(ctx, iid, truth, round_=1, click_model=m)
    assert done == {"click": 1, "draw": 2}
    anns = {a["label"]: a for a in image_annotations(ctx, iid)}
    assert anns["circle"]["bbox"] == [11, 10, 30, 31]  # what the model gave, not the ground truth
    assert anns["square"]["bbox"] == [50, 10, 70, 30] and anns["triangle"]["attributes"] == {}
    r = effort_report(ctx)["rounds"][-1]
    assert r["actions"]["click"] == 1 and r["actions"]["draw"] == 2
    # without click-to-box every miss is drawn
    other = ids["shapes_0005.jpg"]
    remember_candidates(ctx, m, other, planted)
    assert review_with_ground_truth(ctx, other, truth, round_=1) == {"draw": 3}
