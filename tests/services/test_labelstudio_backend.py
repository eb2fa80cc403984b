"""labelloop as a Label Studio ML backend, through the service: /setup's config and label report,
predictions in Label Studio's percent coordinates at the model's thresholds, annotations pulled in
with their provenance (and replaced, and deleted), training queued (never run in the request)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from integrations.fake_label_studio import CONFIG, LEGACY_TOKEN, FakeLabelStudio, rect
from labelloop.errors import InvalidInputError
from labelloop.services import labelstudio as ls
from labelloop.services.annotations import image_annotations
from labelloop.services.images import image_file
from labelloop.settings import get_settings
from selection.loopkit import OraclePredictor, add_fake_model, demo_with_truth, image_ids, pixels_of

pytest.importorskip("httpx")
CLASSES = ["circle", "square", "triangle"]


@pytest.fixture
def linked(tmp_path, monkeypatch) -> Iterator[tuple[Any, ...]]:
    ctx, truth = demo_with_truth(tmp_path / "proj", n_images=10, labelled=6)
    ids = image_ids(ctx)
    oracle = OraclePredictor(CLASSES)
    files = {}
    for name, iid in ids.items():
        oracle.add_truth(pixels_of(ctx, iid), truth[name])
        files[f"/data/upload/1/ab12cd34-{name}"] = image_file(ctx, iid)[0].read_bytes()
    fake = FakeLabelStudio(files=files).start()
    monkeypatch.setenv("LABELLOOP_LABEL_STUDIO_URL", fake.url)
    monkeypatch.setenv("LABELLOOP_LABEL_STUDIO_TOKEN", LEGACY_TOKEN)
    get_settings.cache_clear()
    yield ctx, truth, ids, oracle, fake
    fake.stop()
    ctx.close()


def _size(ctx: Any, image_id: int) -> tuple[int, int]:
    from labelloop.store.tables import Image

    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        return img.width, img.height


def _task(task_id: int, name: str, **extra: Any) -> dict[str, Any]:
    return {"id": task_id, "project": 1, "data": {"image": f"/data/upload/1/ab12cd34-{name}"}, **extra}


def test_setup_keeps_the_config_and_reports_labels_not_shared(linked) -> None:
    ctx, *_ = linked
    answer = ls.setup(ctx, {"project": "1.1718100000", "schema": CONFIG, "hostname": "http://x", "access_token": "t"})
    assert answer["model_version"] == ls.UNTRAINED
    assert answer["labels"] == ["circle", "square"]
    assert answer["unknown_labels"] == ["hexagon"] and answer["labels_not_in_config"] == ["triangle"]
    kept = ls.link(ctx)
    assert kept.ls_project == 1 and kept.label_config == CONFIG and kept.hostname == "http://x"
    with pytest.raises(InvalidInputError, match="not valid XML"):
        ls.setup(ctx, {"project": "2.1", "schema": "<View"})
    assert ls.link(ctx).ls_project == 1  # a refused setup changed nothing


def test_predictions_are_percent_regions_of_the_config_with_scores_and_one_version(linked) -> None:
    ctx, truth, ids, oracle, _ = linked
    add_fake_model(ctx, CLASSES)
    ls.setup(ctx, {"project": "1.1", "schema": CONFIG})
    names = ["shapes_0007.jpg", "shapes_0008.jpg"]
    results = ls.predict(ctx, [_task(7, names[0]), _task(8, names[1]), _task(9, "gone.jpg")], predictor=oracle)
    assert len(results) == 3  # one per task, in task order, even for a task whose image is missing
    version = ls.model_version(ctx)
    assert version.startswith("labelloop-") and all(r["model_version"] == version for r in results)
    for name, result in zip(names, results, strict=False):
        expected = [a for a in truth[name] if a.label in ("circle", "square")]  # triangle: not in the config
        regions = result["result"]
        assert len(regions) == len(expected) and regions
        width, height = _size(ctx, ids[name])
        for region, ann in zip(sorted(regions, key=lambda r: r["value"]["x"]),
                               sorted(expected, key=lambda a: a.bbox[0]), strict=True):
            assert region["from_name"] == "label" and region["to_name"] == "image"
            assert region["type"] == "rectanglelabels" and region["value"]["rectanglelabels"] == [ann.label]
            assert region["value"]["x"] == pytest.approx(ann.bbox[0] / width * 100, abs=1e-4)
            assert region["value"]["width"] == pytest.approx((ann.bbox[2] - ann.bbox[0]) / width * 100, abs=1e-4)
            assert region["score"] == pytest.approx(0.95) and "labelloop" not in region
            assert (region["original_width"], region["original_height"]) == (width, height)
        assert result["score"] == pytest.approx(0.95)
    assert results[2] == {"result": [], "score": 0.0, "model_version": version}
    assert "gone.jpg: 404" in ls.link(ctx).last_error
    # the images were the project's own (same content): nothing was added twice
    assert len(image_ids(ctx)) == len(ids)
    assert ls.versions(ctx) == [version]


def test_predict_without_a_model_answers_empty_predictions(linked) -> None:
    ctx, *_ = linked
    ls.setup(ctx, {"project": "1.1", "schema": CONFIG})
    assert ls.predict(ctx, [_task(1, "shapes_0001.jpg")]) == [
        {"result": [], "score": 0.0, "model_version": ls.UNTRAINED}]
    with pytest.raises(InvalidInputError, match="tasks"):
        ls.predict(ctx, {"id": 1})  # type: ignore[arg-type]


def test_an_annotation_becomes_human_annotations_with_its_provenance_and_is_replaced_then_deleted(linked) -> None:
    ctx, _, ids, _, _ = linked
    name = "shapes_0008.jpg"  # unlabelled in the project
    image_id = ids[name]
    assert image_annotations(ctx, image_id) == []
    size = _size(ctx, image_id)
    regions = [rect(10, 20, 30, 40, "circle", *size), rect(100, 50, 20, 20, "hexagon", *size)]
    task = _task(8, name)
    out = ls.sync_annotation(ctx, task, {"id": 55, "result": regions, "completed_by": 3, "parent_prediction": 9})
    assert out == {"image_id": image_id, "added": 2, "removed": 0}
    anns = sorted(image_annotations(ctx, image_id), key=lambda a: a["bbox"][0])
    assert [a["label"] for a in anns] == ["circle", "hexagon"]  # the unknown label became a class
    assert anns[0]["source"] == "human" and anns[0]["author"] == "labelstudio:3"
    assert anns[0]["bbox"] == pytest.approx([10, 20, 40, 60])
    assert anns[0]["attributes"]["labelstudio"] == {"task": 8, "annotation": 55, "prediction": 9}
    # an update replaces what that annotation brought
    ls.handle_event(ctx, {"action": "ANNOTATION_UPDATED", "task": task,
                          "annotation": {"id": 55, "result": regions[:1], "completed_by": 3}}, lambda: None)
    assert [a["label"] for a in image_annotations(ctx, image_id)] == ["circle"]
    # a delete removes it; another annotation's labels stay
    ls.sync_annotation(ctx, task, {"id": 56, "result": [rect(150, 150, 10, 10, "square", *size)]})
    done = ls.handle_event(ctx, {"action": "ANNOTATIONS_DELETED", "annotations": [{"id": 55}]}, lambda: None)
    assert done["status"] == "ok" and done["removed"] == 1
    assert [a["label"] for a in image_annotations(ctx, image_id)] == ["square"]
    assert ls.link(ctx).events == 2


def test_a_bad_annotation_is_refused_whole_and_noted(linked) -> None:
    ctx, _, ids, *_ = linked
    image_id = ids["shapes_0009.jpg"]
    good = rect(1, 1, 5, 5, "circle", *_size(ctx, image_id))
    outside = {"type": "rectanglelabels",
               "value": {"x": 500, "y": 1, "width": 5, "height": 5, "rectanglelabels": ["circle"]}}
    bad = {"action": "ANNOTATION_CREATED", "task": _task(9, "shapes_0009.jpg"),
           "annotation": {"id": 70, "result": [good, outside]}}
    done = ls.handle_event(ctx, bad, lambda: None)
    assert done["status"] == "failed" and "annotation 70.result[1]" in done["error"]
    assert "outside 0..100" in done["error"]
    assert image_annotations(ctx, image_id) == []  # nothing half-stored
    assert "ANNOTATION_CREATED" in ls.link(ctx).last_error
    assert ls.handle_event(ctx, {"action": "PROJECT_UPDATED"}, lambda: None)["status"] == "ignored"


def test_start_training_pulls_every_annotated_task_then_queues_once(linked) -> None:
    ctx, _, ids, _, fake = linked
    ls.setup(ctx, {"project": "1.1", "schema": CONFIG})
    size = _size(ctx, ids["shapes_0008.jpg"])
    fake.tasks = [
        {**_task(8, "shapes_0008.jpg"), "annotations": [{"id": 80, "result": [rect(5, 5, 20, 20, "circle", *size)]}]},
        {**_task(9, "shapes_0009.jpg"), "annotations": [{"id": 90, "result": [], "was_cancelled": True}]},
        _task(10, "shapes_0007.jpg"),
    ]
    queued: list[int] = []
    done = ls.handle_event(ctx, {"action": "START_TRAINING", "project": {"id": 1}},
                           lambda: queued.append(1) or 41)
    assert done == {"status": "ok", "action": "START_TRAINING", "tasks_synced": 1, "job_id": 41}
    assert queued == [1]
    assert [a["label"] for a in image_annotations(ctx, ids["shapes_0008.jpg"])] == ["circle"]
    assert fake.seen("/api/projects/1/export")[0]["authorization"] == f"Token {LEGACY_TOKEN}"
