"""Eager-torch prediction on numpy images, with tiling for images much larger than the input."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn

from labelloop.core.predictions import Predictions
from labelloop.inference.predictions import from_model_output, fuse_mirrored, merge_tiles, tile_windows

__all__ = ["TILE_OVERLAP", "needs_tiling", "predict_arrays"]

TILE_OVERLAP = 0.2


def needs_tiling(width: int, height: int, tile_size: int) -> bool:
    """Tile only when the image is clearly bigger than a tile (25% margin)."""
    return tile_size > 0 and max(width, height) > 1.25 * tile_size


def _jobs(images: Sequence[np.ndarray], tile_size: int) -> Iterable[tuple[int, tuple[int, int, int, int]]]:
    for i, im in enumerate(images):
        h, w = im.shape[:2]
        if needs_tiling(w, h, tile_size):
            for win in tile_windows(w, h, tile_size, TILE_OVERLAP):
                yield i, win
        else:
            yield i, (0, 0, w, h)


@torch.inference_mode()
def predict_arrays(model: nn.Module, images: Sequence[np.ndarray], device: torch.device | str = "cpu",
                   tile_size: int = 0, batch_size: int = 4, tta: bool = False) -> list[Predictions]:
    """Run ``model`` (eval mode) on ``(H, W, 3)`` uint8 images; one :class:`Predictions` each.

    Large images are cut into overlapping ``tile_size`` windows whose predictions are
    merged with class-wise NMS (see :func:`merge_tiles`). ``tta``: each image's mirror too, fused
    in as the predictor does (:func:`fuse_mirrored`).
    """
    if tta:
        direct = predict_arrays(model, images, device, tile_size, batch_size)
        flipped = predict_arrays(model, [np.ascontiguousarray(im[:, ::-1]) for im in images], device, tile_size,
                                 batch_size)
        return [fuse_mirrored(d, f, im.shape[1]) for d, f, im in zip(direct, flipped, images, strict=True)]
    was_training = model.training
    model.eval()
    device = torch.device(device)
    parts: list[list[tuple[tuple[int, int, int, int], Predictions]]] = [[] for _ in images]
    jobs = list(_jobs(images, tile_size))
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        tensors = [torch.from_numpy(np.ascontiguousarray(images[i][y0:y1, x0:x1])).permute(2, 0, 1)
                   .to(device).float().div_(255) for i, (x0, y0, x1, y1) in chunk]
        outputs = model(tensors)
        for (i, win), out in zip(chunk, outputs, strict=True):
            parts[i].append((win, from_model_output(out)))
    model.train(was_training)
    results = []
    for im, p in zip(images, parts, strict=True):
        h, w = im.shape[:2]
        results.append(p[0][1] if len(p) == 1 else merge_tiles(p, w, h))
    return results
