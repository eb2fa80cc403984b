"""The Python API as a notebook uses it: ``import labelloop as ll`` and nothing else -- init, import,
a tiny training, pre-annotation, review, suggestions, QA and export; progress to a callback;
domain errors with their hints; importing labelloop stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import labelloop as ll
from labelloop.errors import ConfigError, LabelloopError
from labelloop.formats import WriteOptions, get_format
from labelloop.services.demo import DEMO_CLASSES, make_shapes_dataset

TINY = "epochs=2;image_size=128;batch_size=4"


def test_importing_labelloop_loads_nothing_heavy() -> None:
    code = ("import sys, labelloop as ll; print(json.dumps([m in sys.modules for m in "
            "('torch', 'sqlalchemy', 'fastapi', 'labelloop.facade')]))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [False, False, False, False]
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        ll.nope  # noqa: B018


def test_the_loop_from_a_notebook(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    data = make_shapes_dataset(tmp_path / "shapes", n_images=30, size=(96, 128), seed=2, with_polygons=False)
    for rec in data.images[18:]:
        rec.annotations = []  # the last 12 are the unlabelled ones
    get_format("coco").write(data, tmp_path / "coco", WriteOptions())
    seen: list[tuple[str, int, int]] = []

    def progress(stage: str, done: int, total: int) -> None:
        seen.append((stage, done, total))

    with ll.init(tmp_path / "p", labels=list(DEMO_CLASSES)) as p:
        report = p.import_(tmp_path / "coco", progress=progress)
        assert report["images_added"] == 30 and seen
        assert p.split()["totals"]["val"] > 0
        model = p.train(args=TINY, progress=progress)
        assert isinstance(model, ll.Model) and model.status == "ready" and model.map50 is not None
        assert ("train", 2, 2) in seen and len(model.epochs()) == 2
        assert [m.id for m in p.models()] == [model.id] and p.model(model.id).round == model.round
        pre = p.preannotate(model, threshold=0.05, progress=False)
        assert pre["model_id"] == model.id and pre["images"] == 12 and pre["proposals"] > 0
        decided = p.review(accept_above=0.0, reviewer="ana", progress=False)
        assert decided["accepted"] == pre["proposals"] and decided["left"] == 0
        assert p.stats()["images"]["total"] == 30
        picks = p.suggest(n=3, model=model, strategy="random")  # the default: a rich bar
        assert len(picks) <= 3 and all(pick["reasons"] for pick in picks)
        assert isinstance(p.qa(model=model, progress=False), list)
        gif = model.flipbook(tmp_path / "flip.gif")
        assert gif.stat().st_size > 0
        out = p.export(tmp_path / "yolo", format="yolo")
        assert out["images"] == 30 and (tmp_path / "yolo" / "data.yaml").is_file()
        assert p.effort()["rounds"]
        with pytest.raises(ConfigError) as caught:  # the CLI's domain errors, with their fix-it hints
            p.train(args="epoch=3", progress=False)
        assert "valid keys" in (caught.value.hint or "")
    with ll.open(tmp_path / "p" / "images") as again:  # a sub-folder finds its project
        assert again.root == (tmp_path / "p").resolve() and again.task == "detect"
    with pytest.raises(LabelloopError):
        ll.open(tmp_path / "nowhere")


def test_layers_from_a_notebook(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "shapes", n_images=4, size=(64, 64), seed=1, with_polygons=False)
    get_format("coco").write(data, tmp_path / "coco", WriteOptions())
    with ll.init(tmp_path / "proj", task="regions", labels=["tissue"]) as project:
        cells = project.add_layer("shapes", "detect", parent="regions", labels=list(DEMO_CLASSES))
        assert "layer='shapes'" in repr(cells) and cells.task == "detect"
        cells.import_(tmp_path / "coco")
        assert [r["name"] for r in project.layers()] == ["regions", "shapes"]
        assert project.stats()["images"]["total"] == 4 and project.stats()["annotations"]["total"] == 0
        assert cells.stats()["annotations"]["total"] == sum(len(i.annotations) for i in data.images)
        cells.close()  # a layer shares the project's connection: the project still works
        assert project.layer("shapes").stats()["layer"] == "shapes"
        with pytest.raises(LabelloopError, match="no layer 'nope'"):
            project.layer("nope")
