"""Checkpoints (``last.pt``, ``best.pt``), ``model.json`` and loading a trained model back."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from labelloop.errors import ConfigError, NotFoundError
from labelloop.models import get_base_model

__all__ = ["TrainState", "atomic_save", "load_model_dir", "read_model_json", "rng_state", "set_rng_state",
           "write_json"]

MODEL_FORMAT = "labelloop-model/1"


@dataclass
class TrainState:
    """What the loop carries between epochs (and restores on resume)."""

    epoch: int = 0  # completed epochs
    best_score: float = -1.0
    best_epoch: int = 0
    best_metrics: dict[str, Any] = field(default_factory=dict)
    bad_epochs: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a kill never leaves half a checkpoint."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_json(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=_json_default))
    os.replace(tmp, path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                             "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def read_model_json(model_dir: str | Path) -> dict[str, Any]:
    """The metadata of a trained model directory."""
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise NotFoundError(f"{path} not found", "pass the output directory of a finished training run")
    meta = json.loads(path.read_text())
    if meta.get("format") != MODEL_FORMAT:
        raise ConfigError(f"{path}: unknown model format {meta.get('format')!r}, expected {MODEL_FORMAT}")
    return meta


def load_model_dir(model_dir: str | Path, weights: str = "best.pt") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model (eval mode, CPU) from ``model_dir``: ``(model, model.json)``."""
    from labelloop.models.builders import set_input_size

    meta = read_model_json(model_dir)
    spec = get_base_model(meta["base"])
    model = spec.build(len(meta["classes"]), pretrained=False)
    path = Path(model_dir) / weights
    if not path.is_file():
        raise NotFoundError(f"{path} not found", "the run may have been interrupted before its first epoch")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"])
    set_input_size(model, int(meta["input_size"]))
    return model.eval(), meta
