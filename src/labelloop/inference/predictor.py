"""Load a trained model directory and predict with onnxruntime or eager torch."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelloop.core.predictions import Predictions
from labelloop.errors import ConfigError, InvalidInputError
from labelloop.inference.predictions import (
    from_model_output,
    fuse_mirrored,
    merge_tiles,
    tile_windows,
)

__all__ = ["Predictor", "load_predictor"]

BACKENDS = ("auto", "onnx", "torch")


def _check_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        got = f"{getattr(image, 'shape', None)} {getattr(image, 'dtype', type(image).__name__)}"
        raise InvalidInputError(f"expected an (H, W, 3) uint8 RGB image, got {got}",
                                "convert with np.asarray(PIL.Image.open(p).convert('RGB'))")
    return np.ascontiguousarray(image)


class Predictor:
    """Predicts :class:`Predictions` for ``(H, W, 3)`` uint8 RGB images.

    Attributes:
        classes: class names; ``Predictions.labels`` index into this list.
        task: ``detect`` | ``segment`` | ``regions``.
        backend: ``onnx`` or ``torch``.
    """

    def __init__(self, meta: dict[str, Any], backend: str, runner: Any, embedder: Any) -> None:
        self.meta = meta
        self.classes: list[str] = list(meta["classes"])
        self.task: str = meta["task"]
        self.backend = backend
        self.tile_size = int(meta.get("tile_size") or 0)
        #: mirror test-time augmentation (the model's ``tta`` training argument)
        self.tta = bool((meta.get("config") or {}).get("tta")) and self.task != "regions"
        self._run = runner
        self._embed = embedder

    def _predict_one(self, image: np.ndarray) -> Predictions:
        if not self.tta:
            return self._predict_view(image)
        flipped = self._predict_view(np.ascontiguousarray(image[:, ::-1]))
        return fuse_mirrored(self._predict_view(image), flipped, image.shape[1])

    def _predict_view(self, image: np.ndarray) -> Predictions:
        from labelloop.inference.torch_engine import TILE_OVERLAP, needs_tiling

        h, w = image.shape[:2]
        if not needs_tiling(w, h, self.tile_size):
            return self._run(image)
        parts = [((x0, y0, x1, y1), self._run(np.ascontiguousarray(image[y0:y1, x0:x1])))
                 for x0, y0, x1, y1 in tile_windows(w, h, self.tile_size, TILE_OVERLAP)]
        return merge_tiles(parts, w, h)

    def predict(self, image: np.ndarray) -> Predictions:
        """Boxes in original pixels, scores, 0-based labels, RLE masks (segment / regions)."""
        return self._predict_one(_check_image(image))

    def predict_single(self, image: np.ndarray) -> Predictions:
        """One view, without the mirror fusion of ``tta`` (what disagreement between views is measured on)."""
        return self._predict_view(_check_image(image))

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[Predictions]:
        return [self.predict(im) for im in images]

    def embed(self, image: np.ndarray) -> np.ndarray:
        """``(D,)`` float32 L2-normalised pooled backbone features (for diversity sampling)."""
        return np.asarray(self._embed(_check_image(image)), dtype=np.float32)


def _onnx_runner(model_dir: Path, meta: dict[str, Any], threads: int | None = None) -> tuple[Any, Any]:
    import onnxruntime as ort

    from labelloop.inference.export import current_onnx

    current_onnx(model_dir)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or max(1, min(4, os.cpu_count() or 1))
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(model_dir / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    emb = ort.InferenceSession(str(model_dir / "embed.onnx"), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]

    def run(image: np.ndarray) -> Predictions:
        return from_model_output(dict(zip(names, sess.run(None, {"image": image}), strict=True)))

    def embed(image: np.ndarray) -> np.ndarray:
        return emb.run(None, {"image": image})[0]

    return run, embed


def _torch_runner(model_dir: Path) -> tuple[Any, Any]:
    import torch

    from labelloop.inference.export import embed_tensor
    from labelloop.models.artifacts import load_model_dir

    model, meta = load_model_dir(model_dir)
    mean, std = torch.tensor(meta["mean"]), torch.tensor(meta["std"])

    @torch.inference_mode()
    def run(image: np.ndarray) -> Predictions:
        x = torch.from_numpy(image).permute(2, 0, 1).float() / 255.0
        return from_model_output(model([x])[0])

    @torch.inference_mode()
    def embed(image: np.ndarray) -> np.ndarray:
        return embed_tensor(model.backbone, torch.from_numpy(image), mean, std).numpy()

    return run, embed


def load_predictor(model_dir: str | Path, backend: str = "auto", *, threads: int | None = None) -> Predictor:
    """A :class:`Predictor` for a trained model directory.

    ``auto`` uses onnxruntime when it is installed (exporting ``model.onnx`` on first
    use, about 2x faster than eager on CPU) and falls back to torch. ``threads``: onnxruntime's
    threads per inference (default: the cores, at most 4), e.g. 1 in a Ray actor that has one CPU.
    """
    from labelloop.models.artifacts import read_model_json

    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {BACKENDS}, got {backend!r}")
    model_dir = Path(model_dir)
    meta = read_model_json(model_dir)
    if backend == "auto":
        try:
            import onnxruntime  # noqa: F401

            backend = "onnx"
        except ImportError:
            backend = "torch"
    if backend == "onnx":
        run, embed = _onnx_runner(model_dir, meta, threads)
    else:
        run, embed = _torch_runner(model_dir)
    return Predictor(meta, backend, run, embed)
