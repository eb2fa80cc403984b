"""A real (tiny) training through the service layer: model record, epochs, flipbook, lineage."""

from __future__ import annotations

import pytest

from labelloop.errors import ConfigError, TrainingError
from labelloop.services.demo import create_demo_project

pytest.importorskip("torch")

pytestmark = pytest.mark.slow
TINY = "epochs=2;image_size=128;batch_size=4"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from labelloop.services.training import train_project

    root = tmp_path_factory.mktemp("proj")
    ctx, _ = create_demo_project(root, n_images=16, labelled=14, seed=1)
    events: list[dict] = []
    record = train_project(ctx, args=TINY, progress=events.append)
    yield ctx, record, events
    ctx.close()


def test_model_record_epochs_and_artifacts(trained):
    from labelloop.services.models import get_model, list_models

    ctx, record, events = trained
    assert record["status"] == "ready" and record["round"] == 1 and record["parent_id"] is None
    assert record["classes"] == ["circle", "square", "triangle"]
    assert record["args"]["epochs"] == 2 and record["args"]["image_size"] == 128
    shown = get_model(ctx, record["id"])
    assert [e["epoch"] for e in shown["epochs"]] == [1, 2]
    assert all("map50" in e["metrics"] for e in shown["epochs"])
    folder = ctx.root / record["directory"]
    assert (folder / "best.pt").is_file() and (folder / "model.onnx").is_file()
    assert any(p.endswith("loss.png") for p in shown["plots"])
    kinds = [e["type"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("epoch") == 2
    assert [m["id"] for m in list_models(ctx)] == [record["id"]]


def test_flipbook_frames_follow_the_lineage(trained, tmp_path):
    from labelloop.services.models import flipbook, get_model
    from labelloop.services.training import train_project

    ctx, record, _ = trained
    book = flipbook(ctx, record["id"])
    assert [e["epoch"] for e in book["epochs"]] == [1, 2]
    assert book["images"] and all(img["ground_truth"] for img in book["images"])
    child = train_project(ctx, args="epochs=1;image_size=128", from_model=record["id"])
    assert child["round"] == 2 and child["parent_id"] == record["id"] and child["base"] == record["base"]
    assert flipbook(ctx, child["id"])["images"] == book["images"]  # same validation images, comparable rounds
    assert [x["id"] for x in get_model(ctx, child["id"])["lineage"]] == [record["id"], child["id"]]
    from labelloop.services.models import model_lineage

    down = model_lineage(ctx, record["id"])
    assert down["model"]["id"] == record["id"] and down["ancestors"] == []
    assert [m["id"] for m in down["children"]] == [child["id"]]
    up = model_lineage(ctx, child["id"])
    assert [m["id"] for m in up["ancestors"]] == [record["id"]] and up["children"] == []


def test_bad_arguments_and_data(trained, tmp_path):
    from labelloop.services.projects import new_project
    from labelloop.services.training import train_project

    ctx, _, _ = trained
    with pytest.raises(ConfigError, match="valid keys"):
        train_project(ctx, args="epochz=3")
    empty = new_project(tmp_path / "empty", labels=["a"])
    with pytest.raises(TrainingError, match="annotate more"):
        train_project(empty)
    # argument and base-model mistakes are named first, before the data is looked at
    with pytest.raises(ConfigError, match="epochs: expected an integer"):
        train_project(empty, args="epochs=abc")
    with pytest.raises(ConfigError, match="unknown base model 'nope'"):
        train_project(empty, base="nope")
    with pytest.raises(ConfigError, match="is for task 'segment'.*fcos-lite0"):
        train_project(empty, args="base=maskrcnn-lite0")
    empty.close()
