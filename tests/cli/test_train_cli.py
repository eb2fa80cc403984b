"""`labelloop train`, `models`, `flipbook` through the real command."""

from __future__ import annotations

import json

import pytest

from helpers import run

pytest.importorskip("torch")


def test_catalog_lists_a_default_per_task():
    r = run("models", "catalog", "--json")
    assert r.returncode == 0, r.stderr
    specs = json.loads(r.stdout)
    defaults = {s["task"] for s in specs if s["default"]}
    assert defaults == {"detect", "segment", "regions"}
    assert all(s["guidance"] for s in specs)


def test_argument_errors_are_one_line(tmp_path):
    assert run("demo", str(tmp_path / "d"), "--images", "10", "--labelled", "8", "--json").returncode == 0
    r = run("train", "--args", "epochs=3;batchsize=2", "-p", str(tmp_path / "d"))
    assert r.returncode == 1 and "batchsize" in r.stderr and "valid keys" in r.stderr
    assert "Traceback" not in r.stderr
    r = run("train", "--base", "yolo-v99", "-p", str(tmp_path / "d"))
    assert r.returncode == 1 and "fcos-lite0" in r.stderr


@pytest.mark.slow
def test_train_then_models_and_flipbook(tmp_path):
    proj = tmp_path / "d"
    assert run("demo", str(proj), "--images", "14", "--labelled", "12", "--json").returncode == 0
    r = run("train", "--args", "epochs=2;image_size=96", "--json", "-p", str(proj))
    assert r.returncode == 0, r.stderr
    model = json.loads(r.stdout)
    assert model["status"] == "ready" and model["args"]["epochs"] == 2
    listed = json.loads(run("models", "list", "--json", "-p", str(proj)).stdout)
    assert [m["id"] for m in listed] == [model["id"]]
    shown = json.loads(run("models", "show", str(model["id"]), "--json", "-p", str(proj)).stdout)
    assert len(shown["epochs"]) == 2
    prediction = shown["prediction"]  # the size chosen after training on the validation split
    assert prediction["compared"][0]["size"] == prediction["input_size"]
    assert prediction["predict_size"] in [c["size"] for c in prediction["compared"]]
    text = run("models", "show", str(model["id"]), "-p", str(proj)).stdout
    assert f"predicts at {prediction['predict_size']} px (trained at {prediction['input_size']})" in text
    r = run("flipbook", str(model["id"]), "--out", str(tmp_path / "flip.gif"), "-p", str(proj))
    assert r.returncode == 0, r.stderr
    from PIL import Image

    with Image.open(tmp_path / "flip.gif") as gif:
        assert gif.n_frames >= 2  # one frame per epoch at least
    r = run("models", "export", str(model["id"]), "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "-p",
            str(proj))
    assert r.returncode == 0 and (tmp_path / "m.onnx").stat().st_size > 100_000


@pytest.mark.slow
def test_sweep_runs_configs_as_parallel_processes(tmp_path):
    proj = tmp_path / "d"
    assert run("demo", str(proj), "--images", "14", "--labelled", "12", "--json").returncode == 0
    r = run("sweep", "--grid", "epochs=1;image_size=96,128", "--json", "-p", str(proj))
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["errors"] == [] and len(result["leaderboard"]) == 2
    assert result["parallel"] >= 1 and result["threads_per_job"] >= 1
    best = [row for row in result["leaderboard"] if row["best"]]
    assert [row["model_id"] for row in best] == [result["best_model_id"]]


def test_bad_sweep_grid_is_one_line_before_any_table(tmp_path):
    proj = tmp_path / "d"
    assert run("init", str(proj), "--task", "detect", "--labels", "a").returncode == 0
    r = run("sweep", "--grid", "lr", "-p", str(proj))
    assert r.returncode != 0
    assert "grid entry 'lr' has no '='" in r.stderr + r.stdout
    assert "leaderboard" not in r.stdout and "Traceback" not in r.stderr


def test_training_that_cannot_start_prints_one_line(tmp_path):
    proj = tmp_path / "e"
    assert run("init", str(proj), "--task", "detect", "--labels", "a").returncode == 0
    r = run("train", "-p", str(proj))
    assert r.returncode == 1
    lines = (r.stdout + r.stderr).splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: need labelled images"), lines
