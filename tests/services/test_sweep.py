"""Sweeps: grid parsing, slot sizing, and two real configurations trained in parallel."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest

from labelloop.errors import ConfigError
from labelloop.services.demo import create_demo_project
from labelloop.services.sweep import parse_grid, run_sweep, sweep_slots


def test_parse_grid_is_the_cartesian_product():
    combos = parse_grid("base=fcos-lite0;lr=0.01,0.003;epochs=10,30")
    assert len(combos) == 4
    assert {"base": "fcos-lite0", "lr": "0.003", "epochs": "30"} in combos


@pytest.mark.parametrize("grid, message", [
    ("", "empty grid"), ("lr", "has no '='"), ("lr=", "no values"), ("epochz=1,2", "valid keys"),
    ("lr=fast", "lr"),
])
def test_bad_grids_fail_before_anything_runs(grid, message):
    with pytest.raises(ConfigError, match=message):
        parse_grid(grid)


def test_variants_are_one_configuration_each_on_the_shared_arguments():
    from labelloop.services.sweep import sweep_configurations

    combos = sweep_configurations(variants=["lr=0.01", "base=fasterrcnn-lite2;epochs=30"], base="fcos-lite0",
                                  args="epochs=5;tta=true")
    assert combos == [{"base": "fcos-lite0", "epochs": "5", "tta": "true", "lr": "0.01"},
                      {"base": "fasterrcnn-lite2", "epochs": "30", "tta": "true"}]
    assert len(sweep_configurations("lr=0.01,0.003", args="epochs=2")) == 2
    for kwargs, message in [({}, "either a grid"), ({"grid": "lr=1", "variants": ["lr=2"]}, "not both"),
                            ({"variants": ["lr=fast"]}, "lr"), ({"variants": "lr=0.1"}, "list of argument strings")]:
        with pytest.raises(ConfigError, match=message):
            sweep_configurations(**kwargs)


def test_slots_never_oversubscribe_the_cores():
    parallel, threads = sweep_slots(8)
    assert parallel >= 1 and threads >= 1


class InlineExecutor:
    """Runs jobs in this process: proves the sweep only needs ``submit`` and ``shutdown``
    (the contract a Ray executor implements)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def submit(self, fn, /, **kwargs):
        self.calls.append(kwargs)
        future: Future = Future()
        future.set_result(fn(**kwargs))
        return future

    def shutdown(self) -> None:
        pass


@pytest.mark.slow
def test_sweep_of_two_configs_marks_the_best(tmp_path):
    pytest.importorskip("torch")
    ctx, _ = create_demo_project(tmp_path / "p", n_images=14, labelled=12, seed=2)
    updates: list[list[dict]] = []
    executor = InlineExecutor()
    result = run_sweep(ctx, "epochs=1;image_size=96,128;batch_size=4", executor=executor,
                       on_update=updates.append, poll_seconds=0.1)
    assert len(executor.calls) == 2 and result["errors"] == []
    board = result["leaderboard"]
    assert len(board) == 2 and all(r["status"] == "ready" for r in board)
    assert board[0]["map50"] >= board[1]["map50"]
    assert result["best_model_id"] == board[0]["model_id"] and board[0]["best"]
    assert {r["args"] for r in board} == {"epochs=1;image_size=96;batch_size=4", "epochs=1;image_size=128;batch_size=4"}
    ctx.close()
