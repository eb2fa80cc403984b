"""Loading user checkpoints and carrying weights across class lists (fine-tuning by name)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from labelloop.errors import ConfigError
from labelloop.models.spec import ClassHead

__all__ = ["load_weights_file", "read_state_dict", "transfer_state"]

_NESTED_KEYS = ("model", "state_dict", "model_state", "model_state_dict")


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read a state dict from ``path``: a plain one, or a checkpoint nesting it under
    ``model`` / ``state_dict``; a DDP ``module.`` prefix is stripped."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"weights file {path} {'is a folder' if path.is_dir() else 'does not exist'}",
                          "pass --weights with a .pt/.pth file")
    try:
        obj: Any = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; its first line says which
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigError(f"cannot read weights file {path}: {first[:200]}",
                          "expected a torch state_dict saved with torch.save (tensors only: weights are loaded "
                          "without running code from the file)") from exc
    for key in _NESTED_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ConfigError(f"{path} is not a state_dict", "expected {name: tensor} or {'model': {...}}")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_weights_file(model: nn.Module, path: str | Path) -> nn.Module:
    """Load every tensor of ``model`` from ``path``; any missing, unexpected or
    mis-shaped key is a :class:`ConfigError` that lists the first few."""
    state = read_state_dict(path)
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in own.items()
              if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
        raise ConfigError(f"weights {path} do not fit {type(model).__name__}: " + "; ".join(parts),
                          "pass a checkpoint saved from the same base model and number of classes, "
                          "or fine-tune from an earlier model with init_from")
    model.load_state_dict(state, strict=True)
    return model


def _copy_rows(new: Tensor, old: Tensor, head: ClassHead, old_classes: Sequence[str],
               new_classes: Sequence[str]) -> Tensor:
    """Rows for background and classes present in both lists come from ``old``; the rest stay fresh."""
    out = new.clone()
    bg, r = head.background_rows * head.rows_per_class, head.rows_per_class
    out[:bg] = old[:bg]
    old_index = {name: i for i, name in enumerate(old_classes)}
    for j, name in enumerate(new_classes):
        if name in old_index:
            i = old_index[name]
            out[bg + j * r : bg + (j + 1) * r] = old[bg + i * r : bg + (i + 1) * r]
    return out


def transfer_state(model: nn.Module, old_state: dict[str, Tensor], old_classes: Sequence[str],
                   new_classes: Sequence[str], heads: Sequence[ClassHead]) -> dict[str, int]:
    """Initialise ``model`` from an earlier model of the same base, matching classes by name.

    Tensors of the same shape are copied; class-head rows are copied per matching class
    name (new classes keep their fresh initialisation). Returns counts
    ``{"copied": n, "class_rows": n, "skipped": n}``.
    """
    own = model.state_dict()
    prefixes = {h.prefix: h for h in heads}
    counts = {"copied": 0, "class_rows": 0, "skipped": 0}
    for key, value in own.items():
        old = old_state.get(key)
        head = prefixes.get(key.rsplit(".", 1)[0])
        if old is None:
            counts["skipped"] += 1
        elif head is not None:
            own[key] = _copy_rows(value, old, head, old_classes, new_classes)
            counts["class_rows"] += 1
        elif old.shape == value.shape:
            own[key] = old
            counts["copied"] += 1
        else:
            counts["skipped"] += 1
    model.load_state_dict(own)
    return counts
