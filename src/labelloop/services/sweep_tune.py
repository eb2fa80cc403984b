"""A sweep on a Ray cluster: every configuration is a Ray Tune trial, run in parallel across the
nodes, and an ASHA scheduler stops the trials whose validation mAP@.5 trails at each rung.

Used by :func:`labelloop.services.sweep.run_sweep` inside a Ray job (``labelloop serve --executor
ray``). Each trial trains as :func:`labelloop.services.training.train_project` does locally (its
model record, epochs and flipbook in the store), so the live leaderboard reads the same rows. A trial
asks for ``num_clones`` CPUs (or GPUs with ``device=cuda``). A trial ASHA stops keeps its best epoch
so far as a usable model, marked ``stopped_early`` in its snapshot. Ray is imported here only.
"""

from __future__ import annotations

import math
import threading
from typing import Any

from sqlalchemy import func, select

from labelloop.errors import ConfigError, LabelloopError
from labelloop.models.artifacts import read_model_json
from labelloop.store.project import ProjectContext
from labelloop.store.tables import ModelEpoch, TrainedModel, utcnow

__all__ = ["asha_rungs", "finish_stopped_trials", "run_on_tune"]

#: ASHA keeps the best 1/REDUCTION of the trials at each rung
REDUCTION = 3


def asha_rungs(max_epochs: int) -> tuple[int, int]:
    """(grace period, max epochs) for ASHA: no trial is judged before ~1/8 of the longest run (and
    never before its 2nd epoch: a detector's first epochs say little about its last)."""
    max_t = max(1, max_epochs)
    return min(max_t, max(2, math.ceil(max_t / 8))), max_t


def _trial(config: dict[str, Any], database_url: str) -> None:
    """One Tune trial: train one configuration on the sweep's own database (given through the object
    store, never written to the trial's folder); each evaluated epoch is reported to the scheduler."""
    import torch
    from ray import tune

    from labelloop.services.sweep import open_sweep_project, train_configuration

    config = config["trial"]
    torch.set_num_threads(max(1, int(_trial_resources(config["args"])["CPU"])))
    stop = threading.Event()
    planned = [0]

    def on_event(event: Any) -> None:
        if event.get("type") == "start":
            planned[0] = int(event["epochs"])
        # the last epoch is not reported: the scheduler would end the trial (and its actor) on it,
        # before the model is finished and exported; ASHA has judged the trial at every rung before
        if event.get("type") != "epoch" or stop.is_set() or int(event["epoch"]) >= planned[0]:
            return
        try:
            tune.report({"map50": float(event["metrics"].get("map50") or 0.0), "epoch": int(event["epoch"])})
        except SystemExit:  # the scheduler stopped this trial: end the training at its next step
            stop.set()

    ctx = open_sweep_project(config["project_root"], database_url, config.get("layer", ""))
    try:
        train_configuration(ctx, config["base"], config["args"], config["sweep"], progress=on_event, stop_event=stop)
    finally:
        ctx.close()


def _trial_resources(args: str) -> dict[str, float]:
    """What one trial trains on: ``num_clones`` CPUs, or one CPU and ``num_clones`` GPUs on CUDA."""
    from labelloop.training.config import requested_devices

    clones, cuda = requested_devices(args)
    if cuda:
        return {"CPU": 1.0, "GPU": float(clones)}
    return {"CPU": float(clones)}


def _placement(config: dict[str, Any]) -> Any:
    from ray.tune import PlacementGroupFactory

    return PlacementGroupFactory([_trial_resources(config["trial"]["args"])])


def _max_epochs(combos: list[dict[str, str]]) -> int:
    """The longest run asked for (the default length's cap when a configuration leaves it to the data)."""
    from labelloop.training.config import MAX_DEFAULT_EPOCHS

    given = [int(c["epochs"]) for c in combos if "epochs" in c]
    return max(given) if len(given) == len(combos) else max([MAX_DEFAULT_EPOCHS, *given])


def run_on_tune(ctx: ProjectContext, combos: list[dict[str, str]], sweep: str) -> list[str]:
    """Run the sweep's configurations as Tune trials under ASHA; the trials' errors, as readable text."""
    try:
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    except ImportError:
        raise ConfigError("a sweep on Ray needs Ray Tune", "pip install 'labelloop[ray]'") from None

    grace, max_t = asha_rungs(_max_epochs(combos))
    from labelloop.services.sweep import configuration_args

    trials = [{"project_root": str(ctx.root), "layer": ctx.layer_ref, "sweep": sweep, "base": c.get("base"),
               "args": configuration_args(c)}
              for c in combos]
    tuner = tune.Tuner(
        # each trial asks for what its configuration trains on
        tune.with_resources(tune.with_parameters(_trial, database_url=ctx.store.url), _placement),
        param_space={"trial": tune.grid_search(trials)},
        tune_config=tune.TuneConfig(scheduler=ASHAScheduler(time_attr="epoch", metric="map50", mode="max",
                                                            grace_period=grace, max_t=max_t,
                                                            reduction_factor=REDUCTION),
                                    trial_dirname_creator=_trial_name, trial_name_creator=_trial_name),
        run_config=tune.RunConfig(name=f"sweep-{sweep}", storage_path=str(ctx.root / "sweeps"), verbose=0),
    )
    results = tuner.fit()
    finish_stopped_trials(ctx, sweep)
    return [_reason(error) for error in results.errors]


def _trial_name(trial: Any) -> str:
    return f"trial-{trial.trial_id}"


def _reason(error: BaseException) -> str:
    if isinstance(error, LabelloopError):
        return str(error)
    cause = error.__cause__ or error
    lines = str(cause).strip().splitlines()
    return lines[-1] if lines else type(cause).__name__


def finish_stopped_trials(ctx: ProjectContext, sweep: str) -> None:
    """The trials ASHA stopped (their training interrupted, or ended with their actor): each keeps its
    best epoch as a usable model (``stopped_early``), or is failed when no epoch was evaluated."""
    with ctx.store.session() as s:
        for m in s.scalars(select(TrainedModel).where(TrainedModel.sweep == sweep,
                                                      TrainedModel.status.in_(("training", "interrupted")))).all():
            last = s.scalar(select(func.max(ModelEpoch.epoch)).where(ModelEpoch.model_id == m.id))
            try:
                meta = read_model_json(ctx.root / (m.directory or ""))
            except LabelloopError:
                m.status, m.error = "failed", "stopped by the sweep's scheduler before its first evaluation"
            else:
                m.status, m.best_epoch, m.metrics = "ready", meta.get("best_epoch"), meta.get("metrics") or {}
                m.snapshot = {**(m.snapshot or {}),
                              "stopped_early": f"ASHA stopped it after epoch {last}: its mAP@.5 trailed"}
            m.finished_at = utcnow()
