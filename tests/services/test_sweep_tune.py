"""Sweeps on Ray Tune: ASHA's rungs, the stopped trials' models kept usable, and a real sweep of three
configurations on a local Ray instance (the cluster tier runs one through the server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from labelloop.models.artifacts import MODEL_FORMAT
from labelloop.services.demo import create_demo_project
from labelloop.services.sweep_tune import asha_rungs, finish_stopped_trials
from labelloop.store.tables import ModelEpoch, TrainedModel


def test_asha_judges_no_trial_before_an_eighth_of_the_longest_run() -> None:
    assert asha_rungs(100) == (13, 100)
    assert asha_rungs(8) == (2, 8)  # never before the 2nd epoch
    assert asha_rungs(1) == (1, 1)


def _training_row(ctx, sweep: str, *, evaluated: bool) -> int:
    with ctx.store.session() as s:
        m = TrainedModel(project_id=ctx.id, name="trial", base="fcos-lite0", task=ctx.task, round=1,
                         status="training", classes=["circle"], sweep=sweep, directory="")
        s.add(m)
        s.flush()
        m.directory = f"models/{m.id}"
        if evaluated:
            s.add_all([ModelEpoch(model_id=m.id, epoch=e, metrics={"map50": v}) for e, v in ((2, 0.4), (4, 0.3))])
        model_id = m.id
    folder = ctx.root / "models" / str(model_id)
    folder.mkdir(parents=True)
    if evaluated:  # what rank 0 had written when the trial's actor was stopped
        (folder / "model.json").write_text(json.dumps({"format": MODEL_FORMAT, "best_epoch": 2,
                                                       "metrics": {"map50": 0.4}}))
    return model_id


def test_a_trial_stopped_by_asha_keeps_its_best_epoch_as_a_usable_model(tmp_path: Path) -> None:
    ctx, _ = create_demo_project(tmp_path / "p", n_images=4, labelled=2)
    try:
        kept, early, other = (_training_row(ctx, "s1", evaluated=True), _training_row(ctx, "s1", evaluated=False),
                              _training_row(ctx, "s2", evaluated=True))
        finish_stopped_trials(ctx, "s1")
        with ctx.store.session() as s:
            m = s.get(TrainedModel, kept)
            assert (m.status, m.best_epoch, m.metrics) == ("ready", 2, {"map50": 0.4})
            assert m.snapshot["stopped_early"] == "ASHA stopped it after epoch 4: its mAP@.5 trailed"
            m = s.get(TrainedModel, early)
            assert m.status == "failed" and "before its first evaluation" in m.error
            assert s.get(TrainedModel, other).status == "training"  # another sweep's trial is left alone
    finally:
        ctx.close()


@pytest.mark.slow
def test_a_sweep_inside_ray_runs_its_configurations_as_tune_trials(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.tune")
    from labelloop.services.sweep import run_sweep

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ctx, _ = create_demo_project(tmp_path / "p", n_images=14, labelled=12, seed=2)
    updates: list[list[dict]] = []
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        result = run_sweep(ctx, variants=["lr=0.0004", "lr=0.0002", "lr=0.00000001"],
                           args="epochs=4;image_size=96;batch_size=4", on_update=updates.append, poll_seconds=0.5)
    finally:
        ray.shutdown()
        ctx.close()
    assert result["engine"] == "ray tune" and result["errors"] == []
    board = result["leaderboard"]
    assert len(board) == 3 and updates and all(len(u) <= 3 for u in updates)
    assert all(r["status"] == "ready" and r["epoch"] >= 2 for r in board), board  # none left "training"
    for row in board:  # a trial ASHA stopped ended early, with the reason; the others ran their 4 epochs
        assert (row["epoch"] < 4) == bool(row["stopped_early"]), row
    assert board[0]["best"] and result["best_model_id"] == board[0]["model_id"]
