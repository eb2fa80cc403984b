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


def test_mistakes_found_before_a_model_record_exists(trained, tmp_path):
    import torch

    from labelloop.errors import InvalidInputError
    from labelloop.services.models import list_models
    from labelloop.services.training import train_project
    from labelloop.store.tables import TrainedModel

    ctx, record, _ = trained
    before = [m["id"] for m in list_models(ctx)]
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="does not exist"):
        train_project(ctx, args=f"{TINY};weights={tmp_path / 'missing.pt'}")
    with pytest.raises(ConfigError, match="cannot read weights file"):
        train_project(ctx, args=f"{TINY};weights={tmp_path / 'notes.pt'}")
    with pytest.raises(ConfigError, match=r"weight_decay: expected a number in \[0, 1\), got -1"):
        train_project(ctx, args=f"{TINY};weight_decay=-1")
    with pytest.raises(ConfigError, match="image_size: expected at most 8192, got 100000"):
        train_project(ctx, args="image_size=100000")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="device 'cuda' is not available on this machine"):
            train_project(ctx, args=f"{TINY};device=cuda")
    with ctx.store.session() as s:  # a run that failed is nothing to fine-tune from
        s.get(TrainedModel, record["id"]).status = "failed"
    try:
        with pytest.raises(InvalidInputError, match=f"model {record['id']} is failed, so there is nothing"):
            train_project(ctx, args=TINY, from_model=record["id"])
    finally:
        with ctx.store.session() as s:
            s.get(TrainedModel, record["id"]).status = "ready"
    assert [m["id"] for m in list_models(ctx)] == before  # no failed rows (and so no empty model folders)


def test_flipbook_and_model_files_written_whole_or_explained(trained, tmp_path):
    from labelloop.errors import InvalidInputError
    from labelloop.services.models import export_model, render_model_flipbook

    ctx, record, _ = trained
    book = render_model_flipbook(ctx, record["id"], tmp_path / "book.gif")
    assert book.read_bytes()[:6] == b"GIF89a" and [p.name for p in tmp_path.iterdir()] == ["book.gif"]
    (tmp_path / "afile").write_text("x")
    for out in (tmp_path / "afile" / "f.gif", tmp_path / "afile" / "m.onnx"):
        with pytest.raises(InvalidInputError, match=f"cannot write the .* to {out}"):
            if out.suffix == ".gif":
                render_model_flipbook(ctx, record["id"], out)
            else:
                export_model(ctx, record["id"], format="onnx", out=out)
    with pytest.raises(InvalidInputError, match="it is a folder"):
        export_model(ctx, record["id"], format="onnx", out=tmp_path)
    onnx = export_model(ctx, record["id"], format="onnx", out=tmp_path / "m.onnx")
    assert onnx.stat().st_size > 1000 and sorted(p.name for p in tmp_path.iterdir()) == ["afile", "book.gif", "m.onnx"]
