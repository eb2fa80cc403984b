"""Training configuration: typed fields, ``k=v`` argument strings and data-driven defaults."""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from labelloop.core.samples import Sample, TrainingData
from labelloop.errors import ConfigError

__all__ = ["AUGMENT_LEVELS", "TrainConfig", "base_model_for_task", "derive_defaults", "parse_args_string",
           "requested_devices"]

AUGMENT_LEVELS = ("none", "light", "medium", "strong")
STAGES = ("stage1_epochs", "stage2_epochs", "stage3_epochs")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
#: names users bring from other tools' guides (TF Object Detection, Onepanel, Matterport)
ALIASES = {"initial_learning_rate": "lr", "learning_rate": "lr", "iterations": "num_steps"}
#: an ``epochs`` above this is a step count from a guide whose "epochs" are iterations
MAX_EPOCHS = 1000
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class TrainConfig:
    """Everything that controls one training run.

    Attributes:
        base: base-model name (``None`` = the default for the task).
        epochs: full passes over the train split.
        batch_size: images per step *per clone*.
        lr: peak learning rate (AdamW, linear warm-up then cosine).
        backbone_lr: the pre-trained backbone's learning rate as a fraction of ``lr`` (the FPN and
            the heads, which start from random, train at ``lr``); 1 = one rate for everything.
        freeze_at: the pre-trained backbone's stem and its first ``freeze_at`` stages stay frozen
            (EfficientNet-Lite has 7; later stages train). Their backward pass is at the highest
            resolution and has few weights to learn.
        image_size: longest image (or tile) side at the model input, pixels.
        tile_size: ``> 0`` trains on random ``tile_size`` crops of the original images
            (containing objects) and predicts on overlapping tiles; ``0`` = whole images.
        num_clones: data-parallel processes (DDP; gloo on CPU, NCCL on CUDA).
        augment: ``none`` | ``light`` | ``medium`` | ``strong`` (``true`` = medium).
        patience: stop after this many epochs without a better validation score (0 = never).
        eval_every: evaluate on the validation split every this many epochs (and after the last):
            with a few training images and more validation images, evaluating each epoch would
            cost more than training (``0`` = chosen from the split sizes).
        seed: seeds data order, augmentation and head initialisation.
        weight_decay: AdamW weight decay.
        workers: data-loading processes per clone (0 = in the training process).
        device: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N``.
        precision: arithmetic of the training steps (the weights stay float32): ``auto`` = mixed
            float16 on CUDA, mixed bfloat16 on a CPU that computes bfloat16 natively (AMX or
            AVX512-BF16), float32 elsewhere; ``fp32`` | ``bf16`` | ``fp16`` (CUDA only) force one.
            Evaluation and prediction run in float32.
        pretrained: start from the ImageNet backbone shipped in a local package.
        weights: a full state dict of the same base model to start from (``--weights PATH``).
        ema: evaluate and keep a moving average of the weights (smoother on small data).
        copy_paste: probability that a training image gets 1-4 objects pasted from other training
            images (box- and mask-aware; classes drawn uniformly, so a rare class is pasted as often
            as a common one; pasted where they cover no annotated object). 0 = off.
        mosaic: probability that a training image becomes a mosaic: four cells around a random
            centre, each a random window of a training image at its own scale (this one and three
            drawn at random), boxes and masks moved along. 0 = off.
        balanced: repeat-factor sampling -- images holding a rare class are drawn more often
            (``sqrt(f_max / f_class)``, at most 4x).
        tta: predict on the image and its mirror and fuse the two (boxes averaged where both
            views agree): ~2x inference time, tighter boxes and fewer misses.
        predict_scale: the size the model predicts at, as a multiple of ``image_size``: ``auto``
            (stored as 0) compares 1, 1.25, 1.5 and 2 on the validation split after training and
            keeps the one with the least expected review time (:mod:`labelloop.training.predict_scale`);
            a number fixes it (1 = predict at the training size).
        object_balance: FCOS bases only: each object's positive locations share a loss weight
            ``1 / positives ** object_balance`` (0 = every location alike, so big objects dominate;
            0.5 lets small ones count for more).
        self_train: when fine-tuning from a previous model, that model pseudo-labels unlabelled images
            (high per-class thresholds) for this run only, drawn half as often as labelled ones
            (:mod:`labelloop.services.pseudo`); pseudo-labels never enter the store.
        num_steps: the training length in optimiser steps (Onepanel / TF Object Detection style,
            alias ``iterations``), converted to epochs for the project's size (0 = use ``epochs``).
        stage1_epochs, stage2_epochs, stage3_epochs: staged fine-tuning (Matterport Mask R-CNN
            style): the heads only (backbone frozen), then the top half of the backbone's stages as
            well, then everything that trains by default; ``epochs`` is their sum. 0 = not staged.
    """

    base: str | None = None
    epochs: int = 20
    batch_size: int = 4
    lr: float = 4e-4
    backbone_lr: float = 1.0
    freeze_at: int = 2
    image_size: int = 512
    tile_size: int = 0
    num_clones: int = 1
    augment: str = "medium"
    patience: int = 8
    eval_every: int = 1
    seed: int = 0
    weight_decay: float = 1e-4
    workers: int = 1
    device: str = "auto"
    precision: str = "auto"
    pretrained: bool = True
    weights: str | None = None
    ema: bool = True
    copy_paste: float = 0.0
    mosaic: float = 0.0
    balanced: bool = False
    tta: bool = False
    predict_scale: float = 0.0
    object_balance: float = 0.0
    self_train: bool = False
    num_steps: int = 0
    stage1_epochs: int = 0
    stage2_epochs: int = 0
    stage3_epochs: int = 0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.augment, bool):
            self.augment = "medium" if self.augment else "none"
        if self.augment not in AUGMENT_LEVELS:
            raise ConfigError(f"augment: expected true/false or one of {AUGMENT_LEVELS}, got {self.augment!r}")
        for name in ("epochs", "batch_size", "num_clones", "image_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        for name in ("patience", "workers", "tile_size", "seed", "eval_every", "num_steps", "freeze_at", *STAGES):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: expected an integer >= 0, got {getattr(self, name)}")
        if self.staged and self.epochs != sum(getattr(self, n) for n in STAGES):
            raise ConfigError(f"epochs={self.epochs} but the stages add up to "
                              f"{sum(getattr(self, n) for n in STAGES)}",
                              "give the stages' epochs only: epochs is their sum")
        for name, most in (("image_size", 8192), ("batch_size", 4096), ("workers", 64), ("num_clones", 64)):
            if getattr(self, name) > most:
                raise ConfigError(f"{name}: expected at most {most}, got {getattr(self, name)}",
                                  "leave it out for the default derived from the data and the machine")
        if not 0.0 <= self.weight_decay < 1.0 or not math.isfinite(self.weight_decay):
            raise ConfigError(f"weight_decay: expected a number in [0, 1), got {self.weight_decay}",
                              "e.g. weight_decay=0.0001")
        if not 0.0 <= self.object_balance <= 1.0:
            raise ConfigError(f"object_balance: expected a number in [0, 1], got {self.object_balance}")
        if self.predict_scale and not 0.25 <= self.predict_scale <= 4.0:
            raise ConfigError(f"predict_scale: expected auto or a multiple of image_size in [0.25, 4], "
                              f"got {self.predict_scale}", "e.g. predict_scale=1.5, or predict_scale=1 to turn it off")
        for name in ("copy_paste", "mosaic"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"{name}: expected a probability in [0, 1], got {getattr(self, name)}",
                                  f"e.g. {name}=0.5 (0 = off)")
        if not self.lr > 0 or not math.isfinite(self.lr):
            raise ConfigError(f"lr: expected a positive number, got {self.lr}")
        if not 0.0 < self.backbone_lr <= 10.0:
            raise ConfigError(f"backbone_lr: expected a fraction of lr in (0, 10], got {self.backbone_lr}",
                              "e.g. backbone_lr=0.1 trains the pre-trained backbone 10x slower than the heads")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, got {self.precision!r}",
                              "e.g. precision=fp32 to train in full float32")
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", self.device):
            raise ConfigError(f"device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")

    @property
    def staged(self) -> bool:
        """Staged fine-tuning (``stage1_epochs`` .. ``stage3_epochs``) instead of one stage."""
        return any(getattr(self, n) for n in STAGES)

    def stage_of(self, epoch: int) -> int:
        """The stage (1, 2 or 3) epoch ``epoch`` (1-based) belongs to; 3 when not staged."""
        if not self.staged:
            return 3
        if epoch <= self.stage1_epochs:
            return 1
        return 2 if epoch <= self.stage1_epochs + self.stage2_epochs else 3

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly copy (for ``model.json`` and checkpoints)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_args_string(cls, text: str, base: TrainConfig | None = None) -> TrainConfig:
        """``base`` (or the defaults) overridden by ``parse_args_string(text)``."""
        return (base or cls()).replace(**parse_args_string(text))


def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in fields(TrainConfig) if f.name != "extra"}


def _coerce(key: str, raw: str, kind: Any) -> Any:
    """Parse ``raw`` as ``kind`` (int, float, bool, str, ``X | None``; ``augment`` takes bool or level)."""
    text = raw.strip()
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        if text.lower() in {"", "none", "null"}:
            return None
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if key == "predict_scale" and text.lower() == "auto":
        return 0.0
    if key == "augment":
        low = text.lower()
        if low in _TRUE | _FALSE:
            return "medium" if low in _TRUE else "none"
        if low in AUGMENT_LEVELS:
            return low
        raise ConfigError(f"augment: expected true/false or one of {', '.join(AUGMENT_LEVELS)}, got {text!r}")
    try:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError(text)
        if kind is int:
            value = float(text)
            if not value.is_integer():
                raise ValueError(text)
            return int(value)
        if kind is float:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
    except ValueError:
        name = {bool: "true/false", int: "an integer", float: "a number"}[kind]
        name = "auto or a number" if key == "predict_scale" else name
        raise ConfigError(f"{key}: expected {name}, got {text!r}", f"e.g. {key}={_EXAMPLES[key]}") from None
    return text


_EXAMPLES = {"epochs": "30", "batch_size": "8", "lr": "0.0004", "backbone_lr": "0.1", "freeze_at": "3",
             "image_size": "640", "tile_size": "1024",
             "num_clones": "2", "patience": "10", "seed": "1", "weight_decay": "0.0001", "workers": "2",
             "pretrained": "true", "ema": "false", "copy_paste": "0.5", "mosaic": "0.5", "balanced": "true",
             "object_balance": "0.5",
             "tta": "true", "predict_scale": "1.5", "eval_every": "2", "device": "cpu", "precision": "fp32",
             "self_train": "true", "num_steps": "15000",
             "stage1_epochs": "4", "stage2_epochs": "2", "stage3_epochs": "2"}


def parse_args_string(text: str) -> dict[str, Any]:
    """Parse ``"epochs=100;batch_size=24;lr=0.004"`` (``;`` or newlines, whitespace tolerant).

    Keys may start with ``--`` (``--stage1_epochs=4``, as in Mask R-CNN guides) and may be the
    other tools' names in :data:`ALIASES` (``initial_learning_rate``, ``iterations``). Returns only
    the keys given, typed. Unknown keys, a key given twice and bad values raise
    :class:`ConfigError` naming the key and what was expected.
    """
    kinds = _field_types()
    out: dict[str, Any] = {}
    for part in re.split(r"[;\n]", text or ""):
        part = part.strip()
        if not part or part.startswith("#"):
            continue
        if "=" not in part:
            raise ConfigError(f"expected key=value, got {part!r}", "separate settings with ';' or newlines")
        key, raw = (s.strip() for s in part.split("=", 1))
        given = key.lstrip("-").replace("-", "_").lower()
        key = ALIASES.get(given, given)
        if key not in kinds:
            raise ConfigError(f"unknown training argument {given!r}", f"valid keys: {', '.join(sorted(kinds))}")
        if key in out:
            raise ConfigError(f"training argument {key!r} is given twice" + (f" (as {given!r})" if given != key
                                                                            else ""), "keep one of them")
        out[key] = _coerce(key, raw, kinds[key])
    if any(n in out for n in STAGES) and "epochs" not in out:
        out["epochs"] = sum(out.get(n, 0) for n in STAGES)  # the stages' sum (TrainConfig checks it)
    TrainConfig(**out)  # range checks with the key in the message
    return out


def requested_devices(args: str, device: str = "") -> tuple[int, bool]:
    """``(num_clones, on CUDA)`` that training arguments ``args`` ask for (``device``: the one used
    when ``args`` names none), as schedulers reserve them: one process per clone."""
    parsed = parse_args_string(args)
    return int(parsed.get("num_clones", 1) or 1), str(parsed.get("device", device)).startswith("cuda")


# ---------------------------------------------------------------- data-driven defaults

CPU_MAX_SIZE = 1024
GPU_MAX_SIZE = 1536
TILE_INPUT_SIZE = 640
CPU_FLOOR_SIZE = 384  # when objects are large, a CPU run needs no more (raccoon: 320 px -0.06 mAP@.5, 448 px +0)
#: the longest run the data-driven default gives (a tiny set); ``epochs=`` may ask for more
MAX_DEFAULT_EPOCHS = 100
#: the fewest optimiser steps of a first model (not a fine-tuning of the last round's). Dense 3-class set,
#: 12 labelled images at 640 px (3 steps an epoch), round 1 of 50 images, 3 seeds: 45 epochs = 135 steps
#: gave mAP@.5 0.66 +- 0.06 and time ratio 0.50 +- 0.02; 90 epochs = 270 steps 0.73 +- 0.02 and
#: 0.43 +- 0.02: ~480 human seconds saved a round for ~400 more CPU seconds. Bigger sets already
#: take more steps than this (raccoon: 400), so only first models from a handful of images change.
MIN_FRESH_STEPS = 270
#: on the CPU such a first model (one the step floor lengthens) takes its steps at 2 images, and this many
#: of them: more updates from the same few images. Dense 3-class set, round 1, seed 1, same session:
#: 4 images x 270 steps (90 epochs) gave time ratio 0.395 (mAP@.5 0.713, 548 s of training and size
#: choice); 2 images x 408 steps (68 epochs) 0.352 (0.736, 585 s); 2 x 540 (90 epochs) 0.332 (0.735, 747 s)
FRESH_BATCH = 2
MIN_FRESH_STEPS_SMALL_BATCH = 405
TARGET_IMAGES_SEEN = 1500  # ~ images shown in a run at REFERENCE_SIZE; small sets get more epochs
#: the training budget is in pixels: 1500 images at 384 px; bigger inputs get fewer epochs
REFERENCE_SIZE = 384
#: on the CPU an input never upsamples the images beyond this factor (time grows with its square). Measured
#: and kept at 1: dense 3-class set (10th percentile of object sides 10 px, 640 px images), round 1 from 12
#: labelled images, seeds 0 / 1: 768 px (1.2x) raised mAP@.5 0.749 -> 0.799 / 0.706 -> 0.732 and cut the time
#: ratio 0.410 -> 0.361 / 0.428 -> 0.383 (~330 human seconds a round), but training took 1.7x as long
#: (~680 CPU seconds more, a 28-minute round): the person waits longer than the model saves them. Predicting
#: at a bigger size instead (``predict_scale=auto``, :mod:`labelloop.training.predict_scale`) gives most of
#: that gain for 1.5-2.7 CPU minutes a round: seeds 0 / 1, 0.403 -> 0.358 / 0.436 -> 0.375
CPU_MAX_UPSCALE = 1.0
GPU_MAX_UPSCALE = 1.5
#: evaluation (forward only, ~1/3 of a training image's cost) kept under ~30% of the training time
EVAL_SHARE = 0.3
#: AdamW's peak rate at 4 images a step (scaled by sqrt(batch / 4), at most 4x): on a dense 3-class set
#: from 20 objects per class, 1e-3 gave round-1 mAP@.5 0.50, 4e-4 0.70, 2e-4 0.62; 3e-3 did not learn (0.09)
BASE_LR = 4e-4


def _object_stats(samples: list[Sample]) -> tuple[float, float]:
    """(median longest image side, 10th percentile of object min-side), pixels."""
    sides = [max(s.width, s.height) for s in samples] or [512]
    objects = np.concatenate([np.minimum(s.boxes[:, 2] - s.boxes[:, 0], s.boxes[:, 3] - s.boxes[:, 1])
                              for s in samples] or [np.zeros(0)])
    objects = objects[objects > 0]
    longest = float(np.median(sides))
    small = float(np.percentile(objects, 10)) if len(objects) else longest / 4
    return longest, small


def _round32(x: float) -> int:
    return int(math.ceil(x / 32.0) * 32)


def _sizes(data: TrainingData, spec_size: int, min_px: int, gpu: bool) -> tuple[int, int]:
    """(image_size, tile_size): small objects stay >= ``min_px`` at input scale; huge images are tiled."""
    longest, small = _object_stats(data.train)
    # upsampling beyond the image's own resolution costs time with the square of the factor and
    # adds no detail: cap it (objects that stay small at native size are found at native size)
    cap = min(GPU_MAX_SIZE if gpu else CPU_MAX_SIZE,
              max(64, _round32(longest * (GPU_MAX_UPSCALE if gpu else CPU_MAX_UPSCALE))))
    needed_scale = max(min_px / max(small, 1.0), 1e-3)
    desired = longest * needed_scale
    floor = max(64, min(spec_size if gpu else min(spec_size, CPU_FLOOR_SIZE), _round32(longest)))
    if desired <= cap:
        return int(min(max(_round32(desired), floor), cap)), 0
    tile = int(TILE_INPUT_SIZE / needed_scale)
    if tile >= longest / 1.5 or longest <= cap:  # tiles would barely help: use the biggest input
        return cap, 0
    return TILE_INPUT_SIZE, max(tile, 64)


def _device_memory_gb(device: str) -> float | None:
    """GPU memory in GiB when CUDA will be used, else None (no torch import on CPU paths)."""
    if device == "cpu":
        return None
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    index = int(device.split(":")[1]) if ":" in device else 0
    return torch.cuda.get_device_properties(index).total_memory / 2**30


def derive_defaults(data: TrainingData, base: str | None = None,
                    overrides: Mapping[str, Any] | str | None = None, *, fine_tune: bool = False) -> TrainConfig:
    """Defaults that fit ``data`` and this machine; ``overrides`` (dict or ``k=v`` string) win.

    * ``image_size``: small objects (10th percentile) stay >= ~12 px, clamped to the
      base model's size .. 1024 (CPU) / 1536 (GPU) and to the images' own size (1.5x on a GPU);
      bigger needs -> tiles.
    * ``epochs``: about 1500 images seen at 384 px (a pixel budget: at 768 px a quarter as
      many), 4..100 epochs (200 images at 384 px -> 8, 20 -> 75); a first model (not
      ``fine_tune``) takes at least :data:`MIN_FRESH_STEPS` optimiser steps (12 images at 640 px:
      90 epochs, not 45); on the CPU, when that floor applies, at :data:`FRESH_BATCH` images a step
      and :data:`MIN_FRESH_STEPS_SMALL_BATCH` steps.
    * ``eval_every``: evaluation kept under ~30% of the training time (9 training and 33
      validation images -> every 5 epochs; balanced splits -> every epoch).
    * ``batch_size``: 4 on CPU (2 above 768 px), by memory on a GPU; ``lr`` scales with it.
    * ``num_steps``: converted to epochs of ``ceil(train images / (batch_size x num_clones))``
      steps; an ``epochs`` above :data:`MAX_EPOCHS` is refused as a step count (use ``num_steps``).
    """
    given = parse_args_string(overrides) if isinstance(overrides, str) else dict(overrides or {})
    base = given.pop("base", base)
    spec = base_model_for_task(base, data.task)
    device = given.get("device", "auto")
    mem = _device_memory_gb(device)
    image_size, tile_size = _sizes(data, spec.input_size, spec.min_object_px, gpu=mem is not None)
    image_size = given.get("image_size", image_size)
    tile_size = given.get("tile_size", tile_size)
    n_train = max(1, len(data.train))
    budget = TARGET_IMAGES_SEEN * (REFERENCE_SIZE / max(image_size, REFERENCE_SIZE)) ** 2
    epochs = given.get("epochs", int(min(MAX_DEFAULT_EPOCHS, max(4, math.ceil(budget / n_train)))))
    eval_every = given.get("eval_every", 0) or max(1, min(10, math.ceil(len(data.val) / 3 / (EVAL_SHARE * n_train))))
    if mem is None:
        batch = 4 if image_size <= 768 else 2
    else:
        batch = int(min(32, max(2, mem * 1.5 * (512 / image_size) ** 2)))
    batch = given.get("batch_size", batch)
    clones = given.get("num_clones", 1)
    steps_per_epoch = math.ceil(n_train / (batch * clones))
    if not fine_tune and "epochs" not in given and "num_steps" not in given:
        batch, steps_per_epoch, epochs = _fresh_length(n_train, batch, clones, epochs,
                                                       small_batch=mem is None and "batch_size" not in given)
    epochs = _epochs_from_steps(given, epochs, steps_per_epoch)
    lr = given.get("lr", BASE_LR * min(4.0, math.sqrt(batch * clones / 4)))
    workers = given.get("workers", 0 if (os.cpu_count() or 1) <= 2 and mem is None else 2)
    patience = given.get("patience", max(5, epochs // 3))
    rest = {k: v for k, v in given.items() if k not in {"image_size", "tile_size", "epochs", "batch_size",
                                                         "num_clones", "lr", "workers", "patience", "eval_every"}}
    return TrainConfig(base=spec.name, epochs=epochs, batch_size=batch, lr=lr, image_size=image_size,
                       tile_size=tile_size, num_clones=clones, workers=workers, patience=patience,
                       eval_every=eval_every, **rest)


def _fresh_length(n_train: int, batch: int, clones: int, epochs: int, *, small_batch: bool) -> tuple[int, int, int]:
    """(batch, steps per epoch, epochs) of a first model: a few images need their optimiser steps
    (:data:`MIN_FRESH_STEPS`); when that floor lengthens the run and ``small_batch`` (CPU, batch not
    given), they are taken :data:`FRESH_BATCH` images at a time instead, :data:`MIN_FRESH_STEPS_SMALL_BATCH` steps."""
    steps = math.ceil(n_train / (batch * clones))
    floor = min(MAX_DEFAULT_EPOCHS, math.ceil(MIN_FRESH_STEPS / steps))
    if floor <= epochs:
        return batch, steps, epochs
    if small_batch and batch > FRESH_BATCH:
        batch = FRESH_BATCH
        steps = math.ceil(n_train / (batch * clones))
        floor = min(MAX_DEFAULT_EPOCHS, math.ceil(MIN_FRESH_STEPS_SMALL_BATCH / steps))
    return batch, steps, max(epochs, floor)


def _epochs_from_steps(given: Mapping[str, Any], epochs: int, steps_per_epoch: int) -> int:
    """``num_steps`` as epochs of ``steps_per_epoch`` steps; an ``epochs`` that is a step count refused."""
    steps = given.get("num_steps") or 0
    if steps and "epochs" in given:
        raise ConfigError("give epochs or num_steps, not both",
                          f"num_steps={steps} is {math.ceil(steps / steps_per_epoch)} epochs on this project")
    if steps:
        return max(1, math.ceil(steps / steps_per_epoch))
    if epochs > MAX_EPOCHS:
        raise ConfigError(f"epochs={epochs} is far more than a training needs: it looks like a step count (some "
                          "guides call iterations epochs)",
                          f"use num_steps={epochs} (= {math.ceil(epochs / steps_per_epoch)} epochs of "
                          f"{steps_per_epoch} steps on this project), or epochs <= {MAX_EPOCHS}")
    return epochs


def base_model_for_task(name: str | None, task: str) -> Any:
    """The catalog entry ``name`` (``None``: the task's default); unknown names and models of another
    task are a :class:`ConfigError` listing the ones that fit."""
    from labelloop.models import get_base_model, list_base_models

    spec = get_base_model(name, task=task)
    if spec.task != task:
        raise ConfigError(f"base model {spec.name!r} is for task {spec.task!r}, not {task!r}",
                          f"pick one of: {', '.join(s.name for s in list_base_models(task))}")
    return spec
