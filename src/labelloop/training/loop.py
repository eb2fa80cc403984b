"""The training loop: one step, one epoch, one run; single process or DDP clones.

``train_model`` is the one entry point. With ``num_clones > 1`` it spawns DDP processes
that all run :func:`_run` (inside a Ray job, Ray Train workers run it: :mod:`.ray_train`); rank 0
evaluates, writes artifacts and reports progress.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, WeightedRandomSampler

from labelloop.core.predictions import Predictions
from labelloop.core.progress import EndEvent, EpochEvent, PredictSizeEvent, StartEvent, TrainProgress, tag_engine
from labelloop.core.samples import Sample, TrainingData
from labelloop.core.unreadable import Unreadable
from labelloop.errors import ConfigError, InvalidInputError, TrainingError
from labelloop.models import BaseModelSpec, get_base_model
from labelloop.models.artifacts import MODEL_FORMAT, read_model_json
from labelloop.models.backbone import EfficientNetLiteFPN
from labelloop.models.builders import set_input_size
from labelloop.models.weights import transfer_state
from labelloop.selection.effort import CostModel
from labelloop.training.checkpoint import TrainState, atomic_save, rng_state, set_rng_state, write_json
from labelloop.training.config import TrainConfig, base_model_for_task
from labelloop.training.data import SampleDataset, collate, load_rgb, predict_samples, repeat_factors
from labelloop.training.ema import WeightEma
from labelloop.training.metrics import evaluate_predictions
from labelloop.training.predict_scale import ScaleChoice, choose_predict_size
from labelloop.training.report import choose_flipbook_ids, write_flipbook_frame, write_plots

__all__ = ["STAGE_NAMES", "TrainProgress", "TrainResult", "set_stage", "train_model", "train_step"]

log = logging.getLogger(__name__)

StopCheck = Callable[[], bool]


@dataclass
class TrainResult:
    """Outcome of :func:`train_model`. ``reason``: completed | early_stopped | interrupted."""

    out_dir: Path
    best_epoch: int
    best_metrics: dict[str, Any]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    reason: str = "completed"
    #: images left out because they could not be read: ``{"image_id", "file", "reason"}``
    skipped: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Job:
    """Everything a (possibly spawned) worker needs; picklable."""

    data: TrainingData
    config: TrainConfig
    out_dir: Path
    init_from: Path | None
    resume: bool
    flipbook_ids: list[int]
    #: what the prediction size is chosen by (:mod:`labelloop.training.predict_scale`): the project's cost model
    costs: CostModel | None = None


# ------------------------------------------------------------------ step


def _to_device(images: Sequence[Tensor], targets: Sequence[dict[str, Any]], device: torch.device
               ) -> tuple[list[Tensor], list[dict[str, Any]]]:
    """uint8 ``(3, H, W)`` -> float ``[0, 1]`` on ``device``; target tensors moved too."""
    ims = [im.to(device, non_blocking=True).float().div_(255) for im in images]
    tgs = [{k: (v.to(device, non_blocking=True) if isinstance(v, Tensor) else v) for k, v in t.items()}
           for t in targets]
    return ims, tgs


def train_step(model: nn.Module, images: Sequence[Tensor], targets: Sequence[dict[str, Any]],
               optimizer: torch.optim.Optimizer, device: torch.device,
               scaler: torch.amp.GradScaler | None = None, max_grad_norm: float = 10.0,
               autocast_dtype: torch.dtype | None = None) -> dict[str, float]:
    """One optimisation step on a batch; returns ``{"loss": total, <each loss>: value}``.

    ``autocast_dtype``: the forward pass runs under autocast in this type (``scaler`` is needed for
    float16 only); ``None`` = float32, or float16 when a ``scaler`` is given.

    A step whose gradient norm is not finite updates nothing (and logs a warning).

    Raises:
        TrainingError: the loss is NaN or infinite (nothing is updated).
    """
    images, targets = _to_device(images, targets, device)
    dtype = autocast_dtype or (torch.float16 if scaler is not None else None)
    with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        losses: dict[str, Tensor] = model(images, targets)
    loss = sum(losses.values(), torch.zeros((), device=device))
    if not torch.isfinite(loss):
        parts = ", ".join(f"{k}={v.item():.4g}" for k, v in losses.items())
        raise TrainingError(f"training loss is not finite ({parts})",
                            "lower lr=..., check for degenerate boxes, or try augment=none")
    optimizer.zero_grad(set_to_none=True)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        scaler.step(optimizer)
        scaler.update()
    else:
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        if torch.isfinite(norm):
            optimizer.step()
        else:  # as GradScaler does for float16: one overflowing step must not poison the weights
            log.warning("a training step was skipped: its gradient norm is not finite")
    return {"loss": loss.item(), **{k: v.item() for k, v in losses.items()}}


# ------------------------------------------------------------------ run pieces


def _device(config: TrainConfig, rank: int) -> torch.device:
    if config.device == "auto":
        return torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    if config.device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={config.device} but CUDA is not available", "use device=cpu or device=auto")
    return torch.device(config.device)


def native_bf16_cpu() -> bool:
    """Whether this CPU computes bfloat16 natively (Intel AMX or AVX512-BF16, read from
    ``/proc/cpuinfo``): there, mixed bfloat16 trains ~1.3x faster; elsewhere it is emulated and slower."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return "amx_bf16" in flags or "avx512_bf16" in flags


def amp_dtype(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """The autocast type of the training steps for ``config.precision`` on ``device`` (None = float32)."""
    choice = config.precision
    if choice == "auto":
        if device.type == "cuda":
            return torch.float16
        return torch.bfloat16 if device.type == "cpu" and native_bf16_cpu() else None
    if choice == "fp16" and device.type != "cuda":
        raise ConfigError(f"precision=fp16 needs a CUDA device (training runs on {device.type})",
                          "use precision=bf16 or precision=fp32 on the CPU")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[choice]


def _build_model(job: _Job, spec: BaseModelSpec) -> nn.Module:
    """The base model for ``job``'s classes, optionally initialised from an earlier model."""
    cfg, classes = job.config, job.data.classes
    # pretrained also decides what stays frozen, so it holds for --from rounds too
    # (whose weights then replace the ImageNet ones)
    model = spec.build(len(classes), pretrained=cfg.pretrained, weights_path=cfg.weights)
    if job.init_from is not None:
        meta = read_model_json(job.init_from)
        if meta["base"] != spec.name:
            raise ConfigError(f"init_from model uses base {meta['base']!r}, this run uses {spec.name!r}",
                              f"set base={meta['base']} to fine-tune it")
        old = torch.load(Path(job.init_from) / "best.pt", map_location="cpu", weights_only=False)["model"]
        transfer_state(model, old, meta["classes"], classes, spec.class_heads)
    set_input_size(model, cfg.image_size)
    _freeze_backbone(model, cfg.freeze_at)
    head = getattr(model, "head", None)
    if hasattr(head, "object_balance"):
        head.object_balance = cfg.object_balance  # type: ignore[union-attr]
    return model


def _lite_backbone(model: nn.Module) -> EfficientNetLiteFPN | None:
    """The model's EfficientNet-Lite backbone, or None for a model built on another one."""
    return next((m for m in model.modules() if isinstance(m, EfficientNetLiteFPN)), None)


def _freeze_backbone(model: nn.Module, stages: int) -> None:
    """``freeze_at``: freeze the pre-trained backbone's stem and first ``stages`` stages (a
    :class:`ConfigError` beyond its depth); models without an EfficientNet-Lite body are left as built."""
    backbone = _lite_backbone(model)
    if backbone is None:
        return
    if stages > backbone.num_stages:
        raise ConfigError(f"freeze_at={stages}: the backbone has only {backbone.num_stages} stages",
                          f"give freeze_at between 0 and {backbone.num_stages} (2 = the default)")
    backbone.freeze_at(stages)


def set_stage(model: nn.Module, stage: int) -> None:
    """Staged fine-tuning: put the model's backbone in ``stage`` (1 heads only, 2 + the top of the
    backbone, 3 everything); a :class:`ConfigError` for a model whose backbone cannot be staged."""
    backbone = _lite_backbone(model)
    if backbone is None:
        raise ConfigError("this base model's backbone cannot be trained in stages",
                          "leave out stage1_epochs / stage2_epochs / stage3_epochs and give epochs")
    backbone.set_stage(stage)


#: what trains in each stage of a staged fine-tuning
STAGE_NAMES = {1: "heads only, backbone frozen", 2: "heads and the top half of the backbone",
               3: "everything"}


def _length_note(cfg: TrainConfig, steps: int) -> str | None:
    """How the run's length came from ``num_steps`` or the stages, for the progress stream."""
    if cfg.staged:
        return (f"stages {cfg.stage1_epochs}+{cfg.stage2_epochs}+{cfg.stage3_epochs} epochs: "
                f"{STAGE_NAMES[1]}, then {STAGE_NAMES[2]}, then {STAGE_NAMES[3]}")
    if cfg.num_steps:
        return f"num_steps={cfg.num_steps} = {cfg.epochs} epochs of {steps} steps"
    return None


def _schedule(total_steps: int) -> Callable[[int], float]:
    """Linear warm-up (5% of steps, 10..300) then cosine down to 5% of the peak lr."""
    warmup = int(min(300, max(10, 0.05 * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * t))

    return factor


def _loader(job: _Job, rank: int, world: int, device: torch.device) -> DataLoader:
    cfg = job.config
    dataset = SampleDataset(job.data.train, job.data.task, cfg.image_size, cfg.augment, cfg.tile_size,
                            copy_paste=cfg.copy_paste, mosaic=cfg.mosaic)
    sampler: Any
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
    elif cfg.balanced or any(smp.weight != 1.0 for smp in job.data.train):
        weights = [smp.weight for smp in job.data.train]
        if cfg.balanced:
            weights = [w * r for w, r in zip(weights, repeat_factors(job.data.train), strict=True)]
        sampler = WeightedRandomSampler(weights, len(dataset), replacement=True,
                                        generator=torch.Generator().manual_seed(cfg.seed))
    else:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(cfg.seed))
    return DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.workers,
                      collate_fn=collate, pin_memory=device.type == "cuda",
                      persistent_workers=cfg.workers > 0, drop_last=len(dataset) > cfg.batch_size * world)


def _set_epoch(loader: DataLoader, seed: int, epoch: int) -> None:
    """Data order depends only on (seed, epoch), so a resumed run sees what the killed one would."""
    sampler = loader.sampler
    if isinstance(sampler, DistributedSampler):
        sampler.set_epoch(epoch)
    elif isinstance(sampler, RandomSampler | WeightedRandomSampler) and sampler.generator is not None:
        sampler.generator.manual_seed(seed * 1000 + epoch)


def _any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True if ``flag`` is set on any rank (keeps DDP ranks in lock-step when stopping)."""
    if world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def _evaluate(model: nn.Module, job: _Job, device: torch.device) -> tuple[dict[str, Any], dict[int, Predictions]]:
    if not job.data.val:
        return {}, {}
    preds = predict_samples(model, job.data.val, device, job.config.tile_size)
    return evaluate_predictions(job.data.val, preds, job.data.classes, job.data.task), preds


def _checkpoint(path: Path, model: nn.Module, optimizer: Any, scheduler: Any, scaler: Any,
                state: TrainState, job: _Job, ema: WeightEma | None) -> None:
    atomic_save({"model": model.state_dict(), "ema": ema.state_dict() if ema else None,
                 "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if scaler else None,
                 "state": asdict(state), "rng": rng_state(), "classes": job.data.classes,
                 "config": job.config.to_dict()}, path)


def _write_model_json(job: _Job, spec: BaseModelSpec, state: TrainState,
                      prediction: ScaleChoice | None = None) -> None:
    metrics = {k: v for k, v in state.best_metrics.items() if k != "pr"}
    write_json({"format": MODEL_FORMAT, "base": spec.name, "task": job.data.task,
                "classes": list(job.data.classes), "config": job.config.to_dict(),
                "input_size": job.config.image_size, "tile_size": job.config.tile_size,
                "mean": list(spec.mean), "std": list(spec.std), "label_offset": 1,
                "best_epoch": state.best_epoch, "metrics": metrics, "weights": "best.pt",
                "flipbook_ids": job.flipbook_ids, **(prediction.as_meta() if prediction else {})},
               job.out_dir / "model.json")


def _choose_prediction(job: _Job, kept: nn.Module, device: torch.device, report: TrainProgress,
                       stopped: StopCheck) -> ScaleChoice:
    """The best weights' prediction size (:mod:`labelloop.training.predict_scale`); leaves ``kept`` holding them.

    The training size when the task has no choice (regions) or the choice fails (e.g. out of memory at
    a bigger size): the trained model is kept either way, with a warning.
    """
    cfg = job.config
    fallback = ScaleChoice(cfg.image_size, 1.0, [])
    if job.data.task == "regions":
        return fallback

    def progress(done: int, total: int, size: int, seconds: float) -> None:
        report(PredictSizeEvent(type="predict_size", done=done, total=total, size=size,
                                seconds_per_image=round(seconds, 3)))

    try:
        kept.load_state_dict(torch.load(job.out_dir / "best.pt", map_location=device, weights_only=False)["model"])
        choice = choose_predict_size(kept, job.data.val, len(job.data.classes), cfg.image_size, cfg.predict_scale,
                                     costs=job.costs, device=device, tile_size=cfg.tile_size, tta=cfg.tta,
                                     progress=progress, stopped=stopped)
    except (RuntimeError, OSError, ValueError) as exc:  # torch reports out-of-memory as RuntimeError
        log.warning("could not compare prediction sizes (%s): the model predicts at its training size, %s px",
                    exc, cfg.image_size)
        return fallback
    if choice.compared:
        log.info("prediction size %s px (%sx the training size): expected review seconds per image %s",
                 choice.predict_size, choice.scale,
                 ", ".join(f"{c['size']:.0f} px {c['seconds_per_image']}" for c in choice.compared))
    return choice


# ------------------------------------------------------------------ the loop


def _param_groups(model: nn.Module, cfg: TrainConfig) -> list[dict[str, Any]]:
    """The trainable parameters (as built: a staged fine-tuning freezes some of them later, epoch by
    epoch): the pre-trained backbone body at ``lr * backbone_lr``, the rest at ``lr``. One group when
    the rates are equal (as checkpoints of runs before ``backbone_lr`` hold, so they still resume)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    body = getattr(getattr(model, "backbone", None), "body", None)
    if cfg.backbone_lr == 1.0 or not isinstance(body, nn.Module):
        return [{"params": trainable, "lr": cfg.lr}]
    in_body = {id(p) for p in body.parameters()}
    body_params = [p for p in trainable if id(p) in in_body]
    rest = [p for p in trainable if id(p) not in in_body]
    groups: list[dict[str, Any]] = [{"params": rest, "lr": cfg.lr}]
    if body_params:
        groups.append({"params": body_params, "lr": cfg.lr * cfg.backbone_lr})
    return groups


def _run(rank: int, world: int, job: _Job, emit: TrainProgress | None, stopped: StopCheck,
         device: torch.device | None = None) -> TrainResult:
    """Train on this rank (on ``device``, default: from the config and the rank); rank 0 evaluates,
    checkpoints and reports through ``emit``."""
    cfg, out, lead = job.config, job.out_dir, rank == 0
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    device = device or _device(cfg, rank)
    spec = get_base_model(cfg.base, task=job.data.task)
    # channels-last: oneDNN (CPU) and tensor cores (CUDA) run convolutions ~1.3x faster on it
    model = _build_model(job, spec).to(device).to(memory_format=torch.channels_last)
    loader = _loader(job, rank, world, device)
    steps = len(loader)
    optimizer = torch.optim.AdamW(_param_groups(model, cfg), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(cfg.epochs * steps))
    dtype = amp_dtype(cfg, device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    ema = WeightEma(model, cfg.epochs * steps) if cfg.ema and lead else None
    state = TrainState()
    if job.resume and (out / "last.pt").is_file():
        ckpt = torch.load(out / "last.pt", map_location=device, weights_only=False)
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        state = TrainState(**ckpt["state"])
        set_rng_state(ckpt["rng"])
        if ema is not None and ckpt.get("ema"):
            ema.load_state_dict(ckpt["ema"])
    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                  else None, find_unused_parameters=True)
    report = emit if (lead and emit is not None) else (lambda event: None)
    start = StartEvent(type="start", epochs=cfg.epochs, steps_per_epoch=steps, start_epoch=state.epoch + 1)
    if note := _length_note(cfg, steps):
        start["length_note"] = note
    report(start)
    reason = "completed"
    samples_by_id = {s.image_id: s for s in job.data.val}
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        t0 = time.time()
        if cfg.staged and (epoch == state.epoch + 1 or cfg.stage_of(epoch) != cfg.stage_of(epoch - 1)):
            set_stage(model, cfg.stage_of(epoch))
            log.info("epoch %s: stage %s of the fine-tuning (%s)", epoch, cfg.stage_of(epoch),
                     STAGE_NAMES[cfg.stage_of(epoch)])
        net.train()
        _set_epoch(loader, cfg.seed, epoch)
        sums: dict[str, float] = {}
        interrupted = False
        for step, (images, targets) in enumerate(loader, start=1):
            if _any_rank(stopped(), world, device):
                interrupted = True
                break
            losses = train_step(net, images, targets, optimizer, device, scaler, autocast_dtype=dtype)
            scheduler.step()
            if ema is not None:
                ema.update(model)
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            report({"type": "step", "epoch": epoch, "step": step, "steps": steps, "loss": losses["loss"],
                    "lr": optimizer.param_groups[0]["lr"]})
        if interrupted:
            reason = "interrupted"
            break
        stop_early = False
        evaluate = epoch % max(1, cfg.eval_every) == 0 or epoch == cfg.epochs
        if lead and not evaluate:  # the step events already showed this epoch's progress
            state.epoch = epoch
            _checkpoint(out / "last.pt", model, optimizer, scheduler, scaler, state, job, ema)
        elif lead:
            kept = ema.module if ema is not None else model
            metrics, preds = _evaluate(kept, job, device)
            score = metrics.get("score", -sums.get("loss", 0.0))
            record = {"epoch": epoch, "losses": {k: v / max(1, steps) for k, v in sums.items()},
                      "metrics": {k: v for k, v in metrics.items() if k != "pr"},
                      "seconds": round(time.time() - t0, 3), "lr": optimizer.param_groups[0]["lr"]}
            state.epoch = epoch
            state.history.append(record)
            if score > state.best_score:
                state.best_score, state.best_epoch, state.best_metrics = score, epoch, metrics
                state.bad_epochs = 0
                atomic_save({"model": kept.state_dict(), "epoch": epoch, "classes": job.data.classes,
                             "base": spec.name, "metrics": record["metrics"]}, out / "best.pt")
                write_json(metrics.get("pr", {}), out / "pr_curves.json")
            else:
                state.bad_epochs += 1
            _checkpoint(out / "last.pt", model, optimizer, scheduler, scaler, state, job, ema)
            (out / "metrics.jsonl").write_text("".join(_jsonl(r) for r in state.history))
            write_flipbook_frame(out, epoch, {i: preds[i] for i in job.flipbook_ids if i in preds},
                                 samples_by_id)
            _write_model_json(job, spec, state)
            report(EpochEvent(type="epoch", epoch=epoch, losses=record["losses"], metrics=record["metrics"],
                              seconds=record["seconds"], lr=record["lr"]))
            # patience counts epochs; with evaluations every k epochs each bad one stands for k
            # (a staged run does not stop before its last stage: the earlier ones only prepare it)
            stop_early = cfg.patience > 0 and state.bad_epochs * max(1, cfg.eval_every) >= cfg.patience and \
                cfg.stage_of(epoch) == 3
        else:
            state.epoch = epoch
        if _any_rank(stop_early, world, device):
            reason = "early_stopped"
            break
    prediction: ScaleChoice | None = None
    if lead:
        if reason == "interrupted":
            _checkpoint(out / "last.pt", model, optimizer, scheduler, scaler, state, job, ema)
        if state.history:
            write_plots(out, state.history, _read_pr(out))
        if state.best_epoch:
            if reason != "interrupted":
                prediction = _choose_prediction(job, ema.module if ema is not None else model, device, report,
                                                stopped)
            _write_model_json(job, spec, state, prediction)
    end = EndEvent(type="end", reason=reason, best_epoch=state.best_epoch)
    if prediction is not None:
        end["predict_size"] = prediction.predict_size
    report(end)
    return TrainResult(out, state.best_epoch, {k: v for k, v in state.best_metrics.items() if k != "pr"},
                       state.history, reason)


def _jsonl(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record) + "\n"


def _read_pr(out: Path) -> dict[str, Any]:
    import json

    path = out / "pr_curves.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# ------------------------------------------------------------------ entry point, signals, DDP


@contextlib.contextmanager
def _signals(on_signal: Callable[[], None]) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``on_signal`` while training (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: on_signal())
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _check(data: TrainingData, config: TrainConfig) -> None:
    if not data.classes:
        raise TrainingError("the training data has no classes", "add at least one label to the project")
    if not data.train:
        raise TrainingError("the train split is empty", "annotate some images (about 20 objects per class)")
    if data.task not in ("detect", "segment", "regions"):
        raise ConfigError(f"task must be detect, segment or regions, got {data.task!r}")
    if config.num_clones > 1 and len(data.train) < config.num_clones:
        raise ConfigError(f"num_clones={config.num_clones} but only {len(data.train)} training images")


def drop_unreadable(data: TrainingData, max_share: float | None = None
                    ) -> tuple[TrainingData, list[dict[str, Any]]]:
    """``data`` without the images that cannot be decoded (missing, truncated, replaced by garbage), and
    those images (``image_id``, ``file_name``, ``file``, ``reason``); a :class:`TrainingError` listing
    them when they are more than ``max_share`` (default: the ``max_unreadable_share`` setting) of the
    labelled images (pseudo-labelled ones, ``weight < 1``, are not counted)."""
    bad: list[tuple[Sample, str]] = []

    def keep(samples: Sequence[Sample]) -> list[Sample]:
        out = []
        for smp in samples:
            try:
                load_rgb(smp.path)
            except InvalidInputError as err:
                bad.append((smp, err.message))
            else:
                out.append(smp)
        return out

    clean = TrainingData(data.classes, data.task, keep(data.train), keep(data.val))
    labelled = Unreadable("training")
    for smp, why in bad:
        if smp.weight >= 1.0:
            labelled.add(smp.image_id, smp.path.name, why)
    try:
        labelled.check(sum(1 for smp in [*data.train, *data.val] if smp.weight >= 1.0), max_share)
    except InvalidInputError as err:
        raise TrainingError(err.message, err.hint) from None
    return clean, [{"image_id": smp.image_id, "file_name": smp.path.name, "file": str(smp.path), "reason": why}
                   for smp, why in bad]


def train_model(data: TrainingData, config: TrainConfig, out_dir: str | Path, *, progress: TrainProgress | None = None,
                init_from: str | Path | None = None, resume: bool = False,
                flipbook_ids: Sequence[int] | None = None,
                stop_event: threading.Event | None = None, costs: CostModel | None = None) -> TrainResult:
    """Train ``config.base`` on ``data``; artifacts go to ``out_dir`` (see package docs).

    ``progress`` receives dict events (start / step / epoch / end). SIGINT, SIGTERM or
    ``stop_event`` save ``last.pt`` and return with ``reason="interrupted"``; ``resume``
    continues from ``out_dir/last.pt``; ``init_from`` fine-tunes an earlier model,
    matching classes by name; ``costs``: the cost model the prediction size is chosen by (default
    :class:`~labelloop.selection.effort.CostModel`). Images that cannot be read are left out (a
    ``skipped`` progress event, ``TrainResult.skipped``) unless they are more than the
    ``max_unreadable_share`` setting of all.
    """
    data, skipped = drop_unreadable(data)
    if skipped and progress:
        progress({"type": "skipped", "images": skipped})
    _check(data, config)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if init_from is not None and config.base is None:
        config = config.replace(base=read_model_json(init_from)["base"])
    spec = base_model_for_task(config.base, data.task)
    job = _Job(data, config.replace(base=spec.name), out, Path(init_from) if init_from else None, resume,
               choose_flipbook_ids(data.val, flipbook_ids), costs)
    if config.num_clones > 1:
        from labelloop.training import ray_train

        result = (ray_train.train_on_ray if ray_train.on_ray() else _spawn)(job, progress, stop_event)
    else:
        flag = threading.Event()
        with _signals(flag.set):
            result = _run(0, 1, job, progress, lambda: flag.is_set() or bool(stop_event and stop_event.is_set()))
    result.skipped = skipped
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ddp_worker(rank: int, world: int, port: int, job: _Job, queue: Any, stop: Any) -> None:
    backend = "nccl" if torch.cuda.is_available() and job.config.device != "cpu" else "gloo"
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    local = threading.Event()
    try:
        with _signals(local.set):
            result = _run(rank, world, job, queue.put, lambda: local.is_set() or stop.is_set())
        if rank == 0:
            queue.put({"type": "_result", "result": result})
    finally:
        dist.destroy_process_group()


def _spawn(job: _Job, progress: TrainProgress | None, stop_event: threading.Event | None) -> TrainResult:
    """Run ``job`` on ``num_clones`` DDP processes; relay rank 0's events to ``progress``."""
    import queue as queue_mod

    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    events, stop = ctx.Queue(), ctx.Event()
    cuda = torch.cuda.is_available() and job.config.device != "cpu"
    engine = f"{job.config.num_clones} processes on this machine ({'NCCL' if cuda else 'gloo'})"
    procs = mp.start_processes(_ddp_worker, args=(job.config.num_clones, _free_port(), job, events, stop),
                               nprocs=job.config.num_clones, join=False, start_method="spawn")
    result: TrainResult | None = None

    def drain() -> None:
        nonlocal result
        while True:
            try:
                event = events.get(timeout=0.1)
            except queue_mod.Empty:
                return
            if event["type"] == "_result":
                result = event["result"]
            elif progress is not None:
                progress(tag_engine(event, engine))

    with _signals(stop.set):
        try:
            while not procs.join(timeout=0.1):
                drain()
                if stop_event is not None and stop_event.is_set():
                    stop.set()
        except mp.ProcessRaisedException as exc:
            raise TrainingError(f"a training clone failed: {str(exc).strip().splitlines()[-1]}") from exc
        except mp.ProcessExitedException as exc:
            raise TrainingError(f"a training clone died: {exc}", "check memory; try fewer num_clones") from exc
    drain()
    if result is None:
        raise TrainingError("training clones exited without a result")
    return result
