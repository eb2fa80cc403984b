"""QA with planted errors: a wrong class and a missing box rank first; duplicates without a model."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from helpers import plant_duplicate
from labelloop.errors import InvalidInputError
from labelloop.services.annotations import (
    AnnotationInput,
    delete_annotation,
    image_annotations,
    update_annotation,
)
from labelloop.services.qa import find_label_issues
from labelloop.store.tables import Image
from selection.loopkit import OraclePredictor, add_fake_model, demo_with_truth, image_ids, pixels_of


@pytest.fixture
def checked(tmp_path):
    ctx, truth = demo_with_truth(tmp_path / "p", n_images=14, labelled=14, seed=2)
    ids = image_ids(ctx)
    oracle = OraclePredictor(["circle", "square", "triangle"])
    for name, iid in ids.items():
        oracle.add_truth(pixels_of(ctx, iid), truth[name], score=0.96)
    with ctx.store.session() as s:
        val = list(s.scalars(select(Image.id).where(Image.project_id == ctx.id, Image.split == "val")
                             .order_by(Image.id)))
    assert len(val) >= 2
    yield ctx, oracle, val
    ctx.close()


def test_planted_wrong_class_and_missing_box_rank_first(checked):
    ctx, oracle, val = checked
    wrong = image_annotations(ctx, val[0])[0]
    other = next(c for c in oracle.classes if c != wrong["label"])
    update_annotation(ctx, wrong["id"], AnnotationInput(label=other, bbox=tuple(wrong["bbox"])), actor="sloppy",
                      expected_version=wrong["version"])
    gone = image_annotations(ctx, val[1])[0]
    delete_annotation(ctx, gone["id"], actor="sloppy")
    issues = find_label_issues(ctx, model_id=add_fake_model(ctx, oracle.classes), predictor=oracle)
    top = {(i["kind"], i["image_id"]) for i in issues[:2]}
    assert top == {("wrong_class", val[0]), ("missing_box", val[1])}
    first = next(i for i in issues if i["kind"] == "wrong_class")
    assert first["annotation_id"] == wrong["id"] and first["predicted_label"] == wrong["label"]
    assert first["file_name"].startswith("shapes_") and first["score"] == pytest.approx(0.96)
    assert all(set(i) >= {"kind", "image_id", "file_name", "annotation_id", "score", "message"} for i in issues)
    assert [i["score"] for i in issues] == sorted((i["score"] for i in issues), reverse=True)


def test_duplicates_found_over_all_labelled_images(checked):
    ctx, oracle, _ = checked
    train_img, dup = plant_duplicate(ctx)
    issues = find_label_issues(ctx, model_id=add_fake_model(ctx, oracle.classes), predictor=oracle)
    assert ("duplicate", train_img, dup["id"]) in {(i["kind"], i["image_id"], i["annotation_id"]) for i in issues}
    with pytest.raises(InvalidInputError, match="--folds"):
        find_label_issues(ctx, folds=1, predictor=oracle)
