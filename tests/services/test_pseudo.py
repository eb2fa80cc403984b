"""Self-training: a parent model's confident boxes on unlabelled images join the next training only,
at half a labelled image's weight; the store never sees them."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from labelloop.services.datasets import training_data
from labelloop.services.pseudo import PSEUDO_WEIGHT, add_pseudo_labels, pseudo_samples
from labelloop.store.tables import Annotation, AnnotationEvent
from selection.loopkit import TINY_ARGS, OraclePredictor, add_fake_model, demo_with_truth, image_ids, pixels_of

pytest.importorskip("torch")


def _counts(ctx) -> tuple[int, int]:
    with ctx.store.session() as s:
        return (s.scalar(select(func.count()).select_from(Annotation)),
                s.scalar(select(func.count()).select_from(AnnotationEvent)))


def test_confident_boxes_become_pseudo_labels_in_memory_only(tmp_path):
    ctx, truth = demo_with_truth(tmp_path / "p", n_images=14, labelled=8)
    ids = image_ids(ctx)
    oracle = OraclePredictor(["circle", "square", "triangle"])
    for name, iid in ids.items():  # the truth at 0.97, plus a doubtful extra box on every image
        gt = truth[name]
        oracle.add(pixels_of(ctx, iid), [*(a.bbox for a in gt), [1, 1, 9, 9]], [0.97] * len(gt) + [0.3],
                   [*(a.label for a in gt), "circle"])
    parent_id = add_fake_model(ctx, oracle.classes)
    from labelloop.services.training import model_row

    parent = model_row(ctx, parent_id)
    data = training_data(ctx)
    before = _counts(ctx)
    extra = pseudo_samples(ctx, parent, data.classes, 50, predictor=oracle)
    unlabelled = {n for n in ids if n >= "shapes_0008.jpg"}
    assert {ids[n] for n in unlabelled} == {s.image_id for s in extra}  # the 6 unlabelled images, all used
    for smp in extra:
        name = next(n for n, i in ids.items() if i == smp.image_id)
        assert smp.weight == PSEUDO_WEIGHT and len(smp.boxes) == len(truth[name])  # the doubtful box is left out
        assert np.allclose(smp.boxes, [a.bbox for a in truth[name]])
        assert [data.classes[k] for k in smp.labels] == [a.label for a in truth[name]]
    grown, n = add_pseudo_labels(ctx, data, parent, predictor=oracle)
    assert n == len(extra) and len(grown.train) == len(data.train) + n and grown.val == data.val
    assert _counts(ctx) == before  # nothing stored: no annotation, no proposal, no history
    assert not (ctx.root / parent.directory / "thresholds.json").exists()  # the pre-annotation cache is untouched
    ctx.close()


@pytest.mark.slow
def test_a_round_with_self_training_trains_on_labels_and_pseudo_labels(tmp_path):
    from labelloop.services.training import train_project

    ctx, _ = demo_with_truth(tmp_path / "p", n_images=16, labelled=10)
    first = train_project(ctx, args=TINY_ARGS)
    before = _counts(ctx)
    second = train_project(ctx, args=TINY_ARGS + ";self_train=true", from_model=first["id"])
    assert second["status"] == "ready"
    from labelloop.services.training import model_row

    seen = model_row(ctx, second["id"]).snapshot
    assert "n_pseudo_labelled" in seen and seen["n_train_images"] == len(training_data(ctx).train)
    assert _counts(ctx) == before
    ctx.close()
