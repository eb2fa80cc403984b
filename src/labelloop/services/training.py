"""Train a model for a project: one function the CLI, the web jobs and sweeps all call.

The model is a versioned record: base model, arguments, parent, round, the dataset
snapshot it saw, metrics per epoch, best checkpoint, class list and an ONNX export.
"""

from __future__ import annotations

import threading
from typing import Any, cast

from sqlalchemy import select

from labelloop.core.progress import TrainEvent, TrainProgress
from labelloop.errors import ConfigError, InvalidInputError, LabelloopError, NotFoundError, TrainingError
from labelloop.services.datasets import snapshot, training_data
from labelloop.services.effort import cost_model
from labelloop.store.project import ProjectContext
from labelloop.store.tables import ModelEpoch, TrainedModel, utcnow

__all__ = ["model_record", "model_row", "resumable_model", "train_project"]



def model_record(m: TrainedModel) -> dict[str, Any]:
    return {"id": m.id, "name": m.name, "base": m.base, "task": m.task, "args": m.args, "parent_id": m.parent_id,
            "round": m.round, "status": m.status, "classes": m.classes, "metrics": m.metrics,
            "best_epoch": m.best_epoch, "directory": m.directory, "sweep": m.sweep, "error": m.error,
            "snapshot": {k: v for k, v in (m.snapshot or {}).items() if not k.endswith("_images")},
            "created_at": m.created_at.isoformat() if m.created_at else None,
            "finished_at": m.finished_at.isoformat() if m.finished_at else None}


def model_row(ctx: ProjectContext, model_id: int) -> TrainedModel:
    """The model's row, or NotFoundError when it is not in this project."""
    with ctx.store.session() as s:
        m = s.get(TrainedModel, model_id)
        if m is None or m.project_id != ctx.id:
            raise NotFoundError(f"model {model_id} is not in project {ctx.name!r}", "see `labelloop models list`")
        return m


def resumable_model(ctx: ProjectContext) -> TrainedModel:
    """The newest model whose run stopped before the end (interrupted, failed, or killed)."""
    with ctx.store.session() as s:
        m = s.scalars(select(TrainedModel).where(TrainedModel.project_id == ctx.id,
                                                 TrainedModel.status.in_(("interrupted", "training", "failed")))
                      .order_by(TrainedModel.id.desc())).first()
    if m is None:
        raise NotFoundError("no interrupted training run to resume", "start one with `labelloop train`")
    return m


def _epoch_recorder(ctx: ProjectContext, model_id: int, progress: TrainProgress | None) -> TrainProgress:
    def on_event(event: TrainEvent) -> None:
        if event["type"] == "epoch":
            with ctx.store.session() as s:
                old = s.scalars(select(ModelEpoch).where(ModelEpoch.model_id == model_id,
                                                         ModelEpoch.epoch == event["epoch"])).first()
                if old is not None:
                    s.delete(old)
                    s.flush()
                s.add(ModelEpoch(model_id=model_id, epoch=event["epoch"], losses=event["losses"],
                                 metrics=event["metrics"], seconds=event["seconds"]))
        if progress is not None:
            progress(cast(TrainEvent, {**event, "model_id": model_id}))

    return on_event


def _check_request(ctx: ProjectContext, base: str | None, args: str) -> None:
    """Unknown argument keys, bad values and unknown or wrong-task base models, named with the fix."""
    from labelloop.training.config import base_model_for_task, parse_args_string

    given = parse_args_string(args) if args else {}
    name = given.get("base", base)
    if name is not None:
        base_model_for_task(name, ctx.task)
    _check_device(str(given.get("device", "auto")))
    if given.get("weights"):
        from labelloop.models.weights import read_state_dict

        read_state_dict(str(given["weights"]))  # a missing or unreadable file, before a model record exists


def _check_device(device: str) -> None:
    """A device this machine has (``auto`` always is)."""
    if device.startswith("cuda") or device == "mps":
        import torch

        found = torch.cuda.is_available() if device.startswith("cuda") else torch.backends.mps.is_available()
        if not found:
            raise ConfigError(f"device {device!r} is not available on this machine",
                              "leave device out (auto: a GPU when there is one, else the CPU) or use device=cpu")


def _create_record(ctx: ProjectContext, *, base: str | None, args: str, from_model: int | None,
                   seed: int, sweep: str | None, name: str | None) -> tuple[int, Any, Any, Any]:
    from labelloop.training import derive_defaults
    from labelloop.training.report import choose_flipbook_ids

    _check_request(ctx, base, args)  # a typo is reported before the data is gathered
    parent = model_row(ctx, from_model) if from_model is not None else None
    if parent is not None and parent.status != "ready":
        raise InvalidInputError(f"model {parent.id} is {parent.status}, so there is nothing to fine-tune from",
                                "pass --from a ready model (`labelloop models list`), or leave --from out")
    data = training_data(ctx, seed=seed)
    if parent is not None and base is None:
        base = parent.base
    config = derive_defaults(data, base=base, overrides=args or None, fine_tune=parent is not None)
    seen = snapshot(data)
    if config.self_train:  # the pseudo-labelled images share the run's budget with the labelled ones
        from labelloop.services.pseudo import add_pseudo_labels

        data, seen["n_pseudo_labelled"] = add_pseudo_labels(ctx, data, parent, seed=seed)
        config = derive_defaults(data, base=base, overrides=args or None, fine_tune=parent is not None)
    previous = (parent.snapshot or {}).get("flipbook_ids") if parent is not None else None
    flipbook_ids = choose_flipbook_ids(data.val, previous)
    with ctx.store.session() as s:
        rnd = (parent.round + 1) if parent is not None else 1
        m = TrainedModel(project_id=ctx.id, name=name or f"round {rnd}", base=config.base, task=ctx.task,
                         args=config.to_dict(), parent_id=parent.id if parent else None, round=rnd,
                         status="training", classes=list(data.classes),
                         snapshot={**seen, "flipbook_ids": flipbook_ids, "args_string": args},
                         sweep=sweep)
        s.add(m)
        s.flush()
        m.directory = str((ctx.models_dir / str(m.id)).relative_to(ctx.root))
        model_id = m.id
    return model_id, data, config, (parent, flipbook_ids)


def _finish(ctx: ProjectContext, model_id: int, **values: Any) -> dict[str, Any]:
    with ctx.store.session() as s:
        m = s.get(TrainedModel, model_id)
        if m is None:
            raise NotFoundError(f"model {model_id} disappeared during training")
        for k, v in values.items():
            setattr(m, k, v)
        m.finished_at = utcnow()
        s.flush()
        return model_record(m)


def train_project(ctx: ProjectContext, *, base: str | None = None, args: str = "", from_model: int | None = None,
                  resume: bool = False, progress: TrainProgress | None = None,
                  stop_event: threading.Event | None = None, seed: int = 0, sweep: str | None = None,
                  name: str | None = None, export: bool = True) -> dict[str, Any]:
    """Train (or resume) a model on the project's labelled images; returns the model record."""
    from labelloop.training import TrainConfig, train_model

    if resume:
        m = resumable_model(ctx)
        model_id, parent = m.id, (model_row(ctx, m.parent_id) if m.parent_id else None)
        data = training_data(ctx, seed=seed)
        config = TrainConfig(**m.args)
        flipbook_ids = (m.snapshot or {}).get("flipbook_ids")
    else:
        model_id, data, config, (parent, flipbook_ids) = _create_record(
            ctx, base=base, args=args, from_model=from_model, seed=seed, sweep=sweep, name=name)
    out = ctx.models_dir / str(model_id)
    init_from = (ctx.root / parent.directory) if parent is not None else None
    try:
        result = train_model(data, config, out, progress=_epoch_recorder(ctx, model_id, progress),
                             init_from=init_from, resume=resume, flipbook_ids=flipbook_ids, stop_event=stop_event,
                             costs=cost_model(ctx))
    except LabelloopError as err:
        _finish(ctx, model_id, status="failed", error=str(err))
        raise
    except Exception as exc:
        _finish(ctx, model_id, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise TrainingError(f"training model {model_id} failed: {type(exc).__name__}: {exc}",
                            f"`labelloop train --resume` continues from the last epoch; logs in {out}") from exc
    status = "interrupted" if result.reason == "interrupted" else "ready"
    if status == "ready" and not result.best_epoch:
        status = "failed"
    record = _finish(ctx, model_id, status=status, metrics=result.best_metrics, best_epoch=result.best_epoch or None,
                     error=None if status != "failed" else "no epoch finished")
    if status == "ready" and export:
        record = _export_onnx(ctx, model_id) or record
    return {**record, "unreadable_images": result.skipped}  # left out of this training, each with its reason


def _export_onnx(ctx: ProjectContext, model_id: int) -> dict[str, Any] | None:
    """ONNX for fast pre-annotation; a failure is recorded, torch inference still works."""
    from labelloop.inference import export_onnx

    out = ctx.models_dir / str(model_id)
    try:
        export_onnx(out)
    except Exception as exc:  # the exporter raises many kinds; the model stays usable through torch
        with ctx.store.session() as s:
            m = s.get(TrainedModel, model_id)
            if m is not None:
                m.snapshot = {**(m.snapshot or {}), "onnx_error": f"{type(exc).__name__}: {exc}"}
        return None
    return None
