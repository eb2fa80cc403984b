"""Pre-annotation through the service: human labels untouched, re-runs replace only the same
model's open proposals, per-class thresholds stored with the model, bad images skipped."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.services.annotations import AnnotationInput, create_annotation, image_annotations, review_annotation
from labelloop.services.preannotate import preannotate, select_images
from labelloop.store.tables import AnnotationEvent, Image
from selection.loopkit import OraclePredictor, add_fake_model, demo_with_truth, image_ids, pixels_of


@pytest.fixture
def loop(tmp_path):
    ctx, truth = demo_with_truth(tmp_path / "proj", n_images=10, labelled=6)
    ids = image_ids(ctx)
    oracle = OraclePredictor(["circle", "square", "triangle"])
    for name, iid in ids.items():
        oracle.add_truth(pixels_of(ctx, iid), truth[name])
    yield ctx, truth, ids, oracle
    ctx.close()


def _human_view(ctx, ids):
    return {iid: [(a["id"], a["version"], a["bbox"], a["label"]) for a in image_annotations(ctx, iid)
                  if a["source"] == "human"] for iid in ids.values()}


def test_human_labels_never_touched_and_reruns_replace_own_open_proposals(loop):
    ctx, truth, ids, oracle = loop
    m1 = add_fake_model(ctx, oracle.classes)
    unlabelled = [ids[f"shapes_{i:04d}.jpg"] for i in range(6, 10)]
    # a person already drew one box on an unlabelled image; the model must not touch it
    drawn = truth["shapes_0006.jpg"][0]
    create_annotation(ctx, unlabelled[0], AnnotationInput(label=drawn.label, bbox=drawn.bbox), actor="ann")
    humans = _human_view(ctx, ids)
    first = preannotate(ctx, model_id=m1, images="all", predictor=oracle)
    assert first["images"] == 10 and first["skipped"] == []
    # each image's raw candidates are on disk: the server's clicks on them never predict again
    assert all((ctx.root / "cache" / "candidates" / f"m{m1}" / f"{iid}.json").is_file() for iid in ids.values())
    expected = sum(len(truth[f"shapes_{i:04d}.jpg"]) for i in range(6, 10)) - 1  # the drawn one is not repeated
    assert first["proposals"] == expected  # labelled images: every prediction repeats a person's box
    assert _human_view(ctx, ids) == humans
    with ctx.store.session() as s:
        statuses = dict(s.execute(select(Image.id, Image.status).where(Image.id.in_(unlabelled))).all())
    assert set(statuses.values()) == {"pre-annotated"}
    props = [a for iid in unlabelled for a in image_annotations(ctx, iid) if a["review_state"] == "proposed"]
    assert all(a["source"] == f"model:{m1}" and a["model_id"] == m1 and a["score"] == 0.95 for a in props)
    review_annotation(ctx, props[0]["id"], "accept", actor="rev")
    review_annotation(ctx, props[1]["id"], "reject", actor="rev")
    m2 = add_fake_model(ctx, oracle.classes, round_=2)
    other = create_annotation(ctx, unlabelled[1], AnnotationInput(label="circle", bbox=(1, 1, 9, 9), score=0.5),
                              actor=f"model:{m2}", source=f"model:{m2}", model_id=m2)
    second = preannotate(ctx, model_id=m1, images="all", predictor=oracle)
    assert second["replaced"] == len(props) - 2  # only model 1's open proposals
    assert second["proposals"] == len(props) - 2  # reviewed ones are not proposed again
    after = {a["id"]: a for iid in unlabelled for a in image_annotations(ctx, iid, include_rejected=True)}
    assert after[props[0]["id"]]["review_state"] == "accepted" and after[props[1]["id"]]["review_state"] == "rejected"
    assert other["id"] in after  # another model's proposal stays
    assert _human_view(ctx, ids) == humans
    with ctx.store.session() as s:
        kinds = {(e.action, e.actor_kind, e.round) for e in s.scalars(
            select(AnnotationEvent).where(AnnotationEvent.actor == f"model:{m1}"))}
    assert kinds == {("create", "model", 1), ("delete", "model", 1)}


def test_auto_thresholds_are_stored_and_reported(loop):
    ctx, _, _, oracle = loop
    m = add_fake_model(ctx, oracle.classes)
    result = preannotate(ctx, model_id=m, predictor=oracle, target_precision=0.9)
    stored = json.loads((ctx.root / "models" / str(m) / "thresholds.json").read_text())
    assert stored["target_precision"] == 0.9 and set(stored["classes"]) == set(oracle.classes)
    for name, th in result["thresholds"].items():
        assert th == stored["classes"][name]
        assert th["method"] in ("target-precision", "fallback")
    given = preannotate(ctx, model_id=m, predictor=oracle, threshold="0.99;circle=0.5")
    assert given["thresholds"]["square"]["threshold"] == 0.99 and given["thresholds"]["circle"]["threshold"] == 0.5
    assert given["proposals"] > 0 and all(
        a["label"] == "circle" for i in range(6, 10) for a in image_annotations(ctx, image_ids(ctx)[
            f"shapes_{i:04d}.jpg"]) if a["review_state"] == "proposed")


def test_undecodable_image_is_skipped_and_the_rest_done(loop):
    ctx, _, ids, oracle = loop
    m = add_fake_model(ctx, oracle.classes)
    with ctx.store.session() as s:
        broken = s.get(Image, ids["shapes_0007.jpg"])
        path = ctx.root / broken.storage_path
    path.write_bytes(b"not a jpeg")
    result = preannotate(ctx, model_id=m, predictor=oracle, threshold="0.5")
    assert [s["file_name"] for s in result["skipped"]] == ["shapes_0007.jpg"]
    assert "not a readable image" in result["skipped"][0]["reason"]
    assert result["images"] == 3 and result["proposals"] > 0


def test_image_selection_and_errors(loop):
    ctx, _, ids, _ = loop
    assert len(select_images(ctx, "unlabeled")) == 4
    assert len(select_images(ctx, "all")) == 10
    assert {r.file_name for r in select_images(ctx, "shapes_000[01].jpg")} == {"shapes_0000.jpg", "shapes_0001.jpg"}
    assert len(select_images(ctx, "status=new;name=*_0009.jpg")) == 1
    assert all(r.id in (ids["shapes_0001.jpg"],) for r in select_images(ctx, f"ids={ids['shapes_0001.jpg']}"))
    assert select_images(ctx, "split=val")
    with pytest.raises(InvalidInputError, match="unknown image filter key"):
        select_images(ctx, "colour=red")
    with pytest.raises(NotFoundError, match="no trained model"):
        preannotate(ctx)
    # a bad filter fails before any automatic threshold is computed (no progress events at all)
    _, _, _, oracle = loop
    m = add_fake_model(ctx, oracle.classes)
    events: list[dict] = []
    with pytest.raises(InvalidInputError, match="unknown image filter key"):
        preannotate(ctx, model_id=m, predictor=oracle, images="colour=red", progress=events.append)
    assert events == []
