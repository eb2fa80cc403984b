"""Two tiny simulated rounds end to end: the --json shape, and numbers the history backs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labelloop.formats import WriteOptions, get_format
from labelloop.services.demo import make_shapes_dataset
from labelloop.services.effort import effort_report
from labelloop.services.projects import load_project
from selection.loopkit import TINY_ARGS

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

LABELLOOP = str(Path(sys.executable).parent / "labelloop")


def test_two_rounds_json_shape_and_history(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", n_images=24, size=(96, 128), seed=5, with_polygons=False)
    get_format("coco").write(data, tmp_path / "coco", WriteOptions())
    proj = tmp_path / "sim"
    r = subprocess.run([LABELLOOP, "simulate", str(tmp_path / "coco"), "--seed-per-class", "3", "--round-size", "4",
                        "--rounds", "2", "--strategy", "suggest", "--args", TINY_ARGS, "--project-dir", str(proj),
                        "--json"], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "LABELLOOP_DEBUG": ""})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["summary"]) >= {"time_ratio", "final_map50"}
    rounds = out["rounds"]
    assert [x["round"] for x in rounds] == [0, 1, 2]
    for x in rounds:
        assert set(x) >= {"round", "map50", "actions", "seconds_loop", "seconds_scratch", "cumulative_ratio"}
    seed = rounds[0]
    assert seed["map50"] is None and seed["seconds_loop"] == seed["seconds_scratch"]  # drawing everything
    assert seed["actions"]["accept"] == 0 and seed["actions"]["draw"] == seed["objects"]
    assert all(x["images"] == 4 and x["actions"]["inspect"] == 4 for x in rounds[1:])
    assert all(isinstance(x["map50"], float) for x in rounds[1:])
    loop = sum(x["seconds_loop"] for x in rounds[1:])
    scratch = sum(x["seconds_scratch"] for x in rounds[1:])
    assert out["summary"]["time_ratio"] == pytest.approx(loop / scratch, abs=1e-3)
    assert out["summary"]["final_map50"] == rounds[-1]["map50"]
    ctx = load_project(proj)
    try:  # the figures come from the real history
        assert effort_report(ctx)["rounds"][2]["actions"] == rounds[2]["actions"]
    finally:
        ctx.close()


def test_a_start_that_takes_every_image_is_refused_before_training(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", n_images=10, size=(96, 128), seed=5, with_polygons=False)
    get_format("coco").write(data, tmp_path / "coco", WriteOptions())
    proj = tmp_path / "sim"
    r = subprocess.run([LABELLOOP, "simulate", str(tmp_path / "coco"), "--seed-per-class", "500", "--args", TINY_ARGS,
                        "--project-dir", str(proj)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "LABELLOOP_DEBUG": ""})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "500 objects per class" in r.stderr and "--seed-per-class" in r.stderr
    assert not list((proj / "models").glob("*/model.json"))  # refused before any training
    r = subprocess.run([LABELLOOP, "simulate", str(tmp_path / "coco"), "--val-fraction", "0.85"],
                       capture_output=True, text=True, timeout=300, env={**os.environ, "LABELLOOP_DEBUG": ""})
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "8 of them kept for validation" in r.stderr and "smaller --val-fraction" in r.stderr


def test_without_project_dir_the_simulated_project_is_removed(tmp_path):
    data = make_shapes_dataset(tmp_path / "shapes", n_images=16, size=(96, 128), seed=6, with_polygons=False)
    get_format("coco").write(data, tmp_path / "coco", WriteOptions())
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    r = subprocess.run([LABELLOOP, "simulate", str(tmp_path / "coco"), "--seed-per-class", "2", "--round-size", "4",
                        "--rounds", "1", "--strategy", "random", "--args", TINY_ARGS], capture_output=True,
                       text=True, timeout=900, env={**os.environ, "LABELLOOP_DEBUG": "", "TMPDIR": str(scratch)})
    assert r.returncode == 0, r.stderr
    assert "give --project-dir to keep it" in r.stdout.replace("\n", " ")
    # models and image copies of every round: gone
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("labelloop-simulate-")]


def test_strategies_share_round_zero_and_the_first_model(tmp_path):
    """Several strategies in one simulation: the same seed labels and the same first model (trained
    once), each strategy then in its own copy of the project, with its own real history."""
    from labelloop.services.simulate import simulate_strategies

    data = make_shapes_dataset(tmp_path / "shapes", n_images=24, size=(96, 128), seed=5, with_polygons=False)
    get_format("coco").write(data, tmp_path / "coco", WriteOptions())
    out = simulate_strategies(tmp_path / "coco", strategies=["random", "diversity"], seed_per_class=3, round_size=4,
                              rounds=1, args=TINY_ARGS, project_dir=tmp_path / "sim")
    first = {s: r["rounds"][1] for s, r in out.items()}
    assert first["random"]["model_id"] == first["diversity"]["model_id"]
    assert first["random"]["map50"] == first["diversity"]["map50"]  # one model, not two trainings
    assert out["random"]["rounds"][0]["actions"] == out["diversity"]["rounds"][0]["actions"]
    assert {Path(r["project"]).name for r in out.values()} == {"random", "diversity"}
    for result in out.values():
        ctx = load_project(Path(result["project"]))
        try:
            assert effort_report(ctx)["rounds"][1]["actions"] == result["rounds"][1]["actions"]
        finally:
            ctx.close()
    with pytest.raises(Exception, match="each strategy once"):
        simulate_strategies(tmp_path / "coco", strategies=["random", "random"], project_dir=tmp_path / "again")
