"""A trained model's folder as training leaves it: ``model.json`` (its base model, classes, input
size and normalisation) and the weights (``best.pt``, ``last.pt``). Training writes it; inference,
export and fine-tuning read it through here, so neither imports the other."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labelloop.errors import ConfigError, NotFoundError
from labelloop.models import get_base_model

if TYPE_CHECKING:
    from torch import nn

__all__ = ["MODEL_FORMAT", "load_model_dir", "predict_size", "read_model_json"]

MODEL_FORMAT = "labelloop-model/1"


def read_model_json(model_dir: str | Path) -> dict[str, Any]:
    """The metadata of a trained model directory."""
    path = Path(model_dir) / "model.json"
    if not path.is_file():
        raise NotFoundError(f"{path} not found", "pass the output directory of a finished training run")
    meta = json.loads(path.read_text())
    if meta.get("format") != MODEL_FORMAT:
        raise ConfigError(f"{path}: unknown model format {meta.get('format')!r}, expected {MODEL_FORMAT}")
    return meta


def predict_size(meta: dict[str, Any]) -> int:
    """The longest side a model predicts at: the ``predict_size`` its training chose on the validation
    split (``predict_scale``), else the size it trained at (models trained before it existed)."""
    return int(meta.get("predict_size") or meta["input_size"])


def load_model_dir(model_dir: str | Path, weights: str = "best.pt") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a trained model (eval mode, CPU, predicting at :func:`predict_size`) from ``model_dir``:
    ``(model, model.json)``."""
    import torch

    from labelloop.models.builders import set_input_size

    meta = read_model_json(model_dir)
    spec = get_base_model(meta["base"])
    model = spec.build(len(meta["classes"]), pretrained=False)
    path = Path(model_dir) / weights
    if not path.is_file():
        raise NotFoundError(f"{path} not found", "the run may have been interrupted before its first epoch")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(ckpt["model"])
    set_input_size(model, predict_size(meta))
    return model.eval(), meta
