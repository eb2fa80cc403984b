"""ONNX export of a trained model directory (TorchScript exporter, opset 17).

``model.onnx``: input ``image`` ``(H, W, 3)`` uint8 RGB (any size); outputs ``boxes (N, 4)``,
``scores (N,)``, ``labels (N,)`` (0 = background) [+ ``masks (N, 1, H, W)``] for detectors,
or ``semantic (H, W)``, ``scores (H, W)`` for regions models.
``embed.onnx``: same input, output ``embedding (D,)`` (pooled backbone features).
``onnx.json``: what the two were exported from -- the size the graph resizes images to (the model's
prediction size) and the weights file's size and time -- so :func:`current_onnx` exports again when
either changed (a resumed training, a prediction size chosen after an early export).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from labelloop.errors import TrainingError

__all__ = ["EMBED_SIZE", "EmbedWrapper", "PredictWrapper", "current_onnx", "embed_tensor", "export_onnx"]

OPSET = 17
EMBED_SIZE = 224


class PredictWrapper(nn.Module):
    """``(H, W, 3)`` uint8 -> the model's outputs for one image, as a tuple of tensors."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        x = image.permute(2, 0, 1).float() / 255.0
        out = self.model([x])[0]
        if "semantic" in out:
            return out["semantic"], out["scores"]
        if "masks" in out:
            return out["boxes"], out["scores"], out["labels"], out["masks"]
        return out["boxes"], out["scores"], out["labels"]


def embed_tensor(backbone: nn.Module, image: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """``(H, W, 3)`` uint8 -> ``(D,)``: last backbone stage, global average pooled, L2-normalised.

    The image is resized to ``EMBED_SIZE`` squared so embeddings are comparable across sizes.
    """
    x = image.permute(2, 0, 1).float()[None] / 255.0
    x = F.interpolate(x, size=(EMBED_SIZE, EMBED_SIZE), mode="bilinear", align_corners=False)
    x = (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)
    feat = backbone.features(x)[-1].mean(dim=(2, 3))[0]
    return feat / feat.norm().clamp_min(1e-6)


class EmbedWrapper(nn.Module):
    def __init__(self, backbone: nn.Module, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, image: Tensor) -> Tensor:
        return embed_tensor(self.backbone, image, self.mean, self.std)


def _output_names(task: str) -> list[str]:
    if task == "regions":
        return ["semantic", "scores"]
    if task == "segment":
        return ["boxes", "scores", "labels", "masks"]
    return ["boxes", "scores", "labels"]


ONNX_INFO = "onnx.json"


def _source(model_dir: Path, weights: str) -> dict[str, Any]:
    from labelloop.models.artifacts import predict_size, read_model_json

    stat = (model_dir / weights).stat()
    return {"predict_size": predict_size(read_model_json(model_dir)), "weights": weights,
            "weights_bytes": stat.st_size, "weights_mtime_ns": stat.st_mtime_ns}


def current_onnx(model_dir: str | Path, *, weights: str = "best.pt") -> Path:
    """``model.onnx`` (and ``embed.onnx``) of ``model_dir``, exported first when missing or exported
    from other weights or at another size than the model now predicts at (``onnx.json``)."""
    model_dir = Path(model_dir)
    out = model_dir / "model.onnx"
    info = model_dir / ONNX_INFO
    if out.is_file() and (model_dir / "embed.onnx").is_file():
        try:
            if json.loads(info.read_text()) == _source(model_dir, weights):
                return out
        except (OSError, ValueError):
            pass  # no record (exported before it existed) or a damaged one: export again
    return export_onnx(model_dir, weights=weights)


def export_onnx(model_dir: str | Path, *, weights: str = "best.pt") -> Path:
    """Write ``model.onnx`` and ``embed.onnx`` into ``model_dir``; returns the ``model.onnx`` path."""
    from labelloop.models.artifacts import load_model_dir, predict_size

    model_dir = Path(model_dir)
    model, meta = load_model_dir(model_dir, weights)
    size = predict_size(meta)
    dummy = torch.randint(0, 255, (max(64, size * 3 // 4), size, 3), dtype=torch.uint8)
    dynamic = {"image": {0: "height", 1: "width"}}
    names = _output_names(meta["task"])
    out = model_dir / "model.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings from torchvision are expected
        try:
            torch.onnx.export(PredictWrapper(model), (dummy,), str(out), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=names,
                              dynamic_axes={**dynamic, **{n: {0: f"n_{n}"} for n in names}})
            torch.onnx.export(EmbedWrapper(model.backbone, meta["mean"], meta["std"]).eval(), (dummy,),
                              str(model_dir / "embed.onnx"), dynamo=False, opset_version=OPSET,
                              input_names=["image"], output_names=["embedding"], dynamic_axes=dynamic)
        except Exception as exc:  # the exporter raises many types
            raise TrainingError(f"ONNX export of {model_dir} failed: {exc}",
                                "use backend='torch' for this model") from exc
    (model_dir / ONNX_INFO).write_text(json.dumps(_source(model_dir, weights)))
    return out
