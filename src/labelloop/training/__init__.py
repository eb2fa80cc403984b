"""Training: config and defaults, dataset adapter, the loop, metrics, checkpoints, flipbook.

Names are resolved lazily so ``from labelloop.training import TrainConfig`` does not import torch::

    config = derive_defaults(data, overrides="epochs=30;batch_size=8")
    result = train_model(data, config, "runs/1", progress=print)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "AUGMENT_LEVELS",
    "TrainConfig",
    "TrainResult",
    "derive_defaults",
    "parse_args_string",
    "render_flipbook",
    "train_model",
    "train_step",
]

_HOME = {
    "AUGMENT_LEVELS": "config", "TrainConfig": "config", "derive_defaults": "config",
    "parse_args_string": "config", "TrainResult": "loop", "train_model": "loop", "train_step": "loop",
    "render_flipbook": "flipbook",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(importlib.import_module(f"labelloop.training.{_HOME[name]}"), name)
    raise AttributeError(f"module 'labelloop.training' has no attribute {name!r}")
