"""Suggestions with planted predictions: the hard deficit-class image first, its near-duplicate
not twice at the top, a reason for every pick."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image as PILImage

from labelloop.errors import InvalidInputError
from labelloop.services.images import add_image_files
from labelloop.services.suggest import labelled_counts, suggest_images
from selection.loopkit import OraclePredictor, add_fake_model, demo_with_truth, image_ids, pixels_of


def _oracle_project(tmp_path, n_images: int, labelled: int):
    """A demo project and a predictor that sees each image's ground truth, confidently."""
    ctx, truth = demo_with_truth(tmp_path / "p", n_images=n_images, labelled=labelled)
    ids = image_ids(ctx)
    oracle = OraclePredictor(["circle", "square", "triangle"])
    for name, iid in ids.items():
        oracle.add_truth(pixels_of(ctx, iid), truth[name], score=0.97)
    return ctx, ids, oracle


def test_planted_hard_image_first_and_its_twin_not_at_the_top(tmp_path):
    ctx, truth = demo_with_truth(tmp_path / "p", n_images=16, labelled=8)
    ids = image_ids(ctx)
    oracle = OraclePredictor(["circle", "square", "triangle"])
    for name, iid in ids.items():
        oracle.add_truth(pixels_of(ctx, iid), truth[name], score=0.97)  # confident everywhere else
    hard_name = "shapes_0010.jpg"
    hard = pixels_of(ctx, ids[hard_name])
    twin_path = tmp_path / "twin.png"
    near = hard.copy()
    near[0, 0] = (near[0, 0].astype(int) + 3).clip(0, 255)  # another file, the same picture
    PILImage.fromarray(near).save(twin_path)
    twin_id = add_image_files(ctx, [("shapes_twin.png", twin_path)], actor="t").added[0]["id"]
    # the model thinks it sees many triangles (the class furthest below target), unsure, and the mirror disagrees
    boxes = [[10 + 30 * k, 20, 36 + 30 * k, 46] for k in range(6)]
    planted = dict(boxes=boxes, scores=[0.55] * 6, labels=["triangle"] * 6, mirrored=([], [], []))
    oracle.add(hard, **planted)
    oracle.add(pixels_of(ctx, twin_id), **planted)
    model = add_fake_model(ctx, oracle.classes)
    counts = labelled_counts(ctx)
    assert min(counts, key=counts.get) == "triangle" or counts["triangle"] < 20
    top = suggest_images(ctx, n=5, model_id=model, predictor=oracle, strategy="mixed")
    assert len(top) == 5 and [t["rank"] for t in top] == [1, 2, 3, 4, 5]
    assert top[0]["image_id"] in (ids[hard_name], twin_id)
    picked = [t["image_id"] for t in top]
    assert not (ids[hard_name] in picked[:4] and twin_id in picked[:4])
    assert any("triangle" in r for r in top[0]["reasons"])
    assert any("mirrored" in r for r in top[0]["reasons"])
    assert all(t["reasons"] and set(t) >= {"image_id", "file_name", "score", "reasons", "components"} for t in top)
    every = suggest_images(ctx, n=50, model_id=model, predictor=oracle, strategy="mixed")
    assert len(every) == 9  # the unlabelled pool, twin included, each once
    last = every[-1]
    assert last["image_id"] in (ids[hard_name], twin_id) and last["reasons"][0].startswith("near-duplicate of")
    with pytest.raises(InvalidInputError):
        suggest_images(ctx, n=0, model_id=model, predictor=oracle)
    ctx.close()


def test_labelled_counts_follow_ground_truth(tmp_path):
    ctx, truth = demo_with_truth(tmp_path / "p", n_images=6, labelled=3)
    expected: dict[str, int] = {"circle": 0, "square": 0, "triangle": 0}
    for i in range(3):
        for a in truth[f"shapes_{i:04d}.jpg"]:
            expected[a.label] += 1
    assert labelled_counts(ctx) == expected
    assert np.isfinite(list(expected.values())).all()
    ctx.close()


def test_every_strategy_names_itself_and_the_model_round(tmp_path):
    from labelloop.selection.strategies import STRATEGIES

    ctx, ids, oracle = _oracle_project(tmp_path, n_images=12, labelled=6)
    cheap, dear = ids["shapes_0007.jpg"], ids["shapes_0008.jpg"]
    # the same doubt on two images; one has many more uncertain boxes to review
    oracle.add(pixels_of(ctx, cheap), [[5, 5, 30, 30]], [0.5], ["circle"])
    oracle.add(pixels_of(ctx, dear), [[5 + 12 * k, 5, 15 + 12 * k, 15] for k in range(8)], [0.5] * 8, ["circle"] * 8)
    model = add_fake_model(ctx, oracle.classes)
    for strategy in STRATEGIES:
        items = suggest_images(ctx, n=3, model_id=model, predictor=oracle, strategy=strategy)
        assert len(items) == 3 and all(i["strategy"] == strategy and i["model_id"] == model for i in items)
        assert all("model_round" in i and i["reasons"] for i in items)
    effort = suggest_images(ctx, n=6, model_id=model, predictor=oracle, strategy="effort")
    seconds = {i["image_id"]: i["components"]["expected_seconds"] for i in effort}
    assert seconds[dear] > seconds[cheap] > 2.0  # inspect + the boxes' expected review
    typical = float(np.median(list(seconds.values())))
    for item in effort:  # gain per second: the value scaled by how much cheaper than typical the image is
        rate = min(4.0, max(0.25, typical / seconds[item["image_id"]]))
        assert item["score"] == pytest.approx(item["components"]["value"] * rate, abs=1e-3)
    with pytest.raises(InvalidInputError, match="unknown selection strategy"):
        suggest_images(ctx, n=3, model_id=model, predictor=oracle, strategy="clever")
    ctx.close()


def test_suggestions_of_an_earlier_job_leave_out_images_labelled_since(tmp_path):
    from labelloop.services.annotations import AnnotationInput, create_annotation
    from labelloop.services.suggest import still_unlabelled

    ctx, _ids, oracle = _oracle_project(tmp_path, n_images=10, labelled=5)
    model = add_fake_model(ctx, oracle.classes)
    picks = suggest_images(ctx, n=5, model_id=model, predictor=oracle, strategy="random")
    assert still_unlabelled(ctx, picks) == picks  # nothing labelled since: the job's list as it was
    done = picks[1]["image_id"]
    create_annotation(ctx, done, AnnotationInput("circle", (2, 2, 20, 20)), actor="ann")
    left = still_unlabelled(ctx, picks)
    assert [p["image_id"] for p in left] == [p["image_id"] for p in picks if p["image_id"] != done]
    assert still_unlabelled(ctx, []) == []
    ctx.close()
