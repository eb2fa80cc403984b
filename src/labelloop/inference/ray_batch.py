"""Batch inference on Ray Data (extra ``[ray]``): many images through a pool of actors, each holding
one loaded (ONNX) model, results streamed back in order of completion.

Used by pre-annotation when it runs on a Ray cluster (the job is then a Ray task, see
:mod:`labelloop.jobs.ray_executor`) and has many images. An image that cannot be read comes back
with its reason instead of predictions: it is reported and skipped, never fails the batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from labelloop.core.predictions import Predictions

__all__ = ["MIN_IMAGES", "available", "ray_predictions"]

#: below this many images one process is faster than starting actors
MIN_IMAGES = 200
BATCH = 8
#: CPUs each actor asks for, and its inference threads
ACTOR_CPUS = 1


def available() -> bool:
    """Ray is installed and this process is part of a running Ray cluster (a Ray task or driver)."""
    try:
        import ray
    except ImportError:
        return False
    return bool(ray.is_initialized())


class _Predict:
    """A Ray Data actor: one model load, then batches of image paths, on the one CPU it asked for (as
    many inference threads as cores would make the actors of a node fight over them)."""

    def __init__(self, model_dir: str, max_pixels: int) -> None:
        from labelloop.inference import load_predictor

        self.predictor = load_predictor(model_dir, threads=ACTOR_CPUS)
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        from labelloop.errors import InvalidInputError
        from labelloop.store.images import decode_rgb

        out: dict[str, list[Any]] = {"id": [], "boxes": [], "scores": [], "labels": [], "masks": [], "error": []}
        for image_id, path in zip(batch["id"], batch["path"], strict=True):
            out["id"].append(int(image_id))
            try:
                preds = self.predictor.predict(np.asarray(decode_rgb(Path(str(path)), max_pixels=self.max_pixels)))
            except InvalidInputError as err:
                preds, error = Predictions.empty(), err.message
            else:
                error = ""
            out["boxes"].append(preds.boxes.reshape(-1).tolist())
            out["scores"].append(preds.scores.tolist())
            out["labels"].append(preds.labels.tolist())
            out["masks"].append(preds.masks)
            out["error"].append(error)
        return {k: np.array(v, dtype=object) for k, v in out.items()}


def ray_predictions(model_dir: Path, images: Sequence[tuple[int, Path]], *, max_pixels: int,
                    actors: int | None = None) -> Iterator[tuple[int, Predictions | str]]:
    """``(image id, predictions or the reason it could not be read)`` for every image, as they finish."""
    import ray

    pool = actors or max(1, min(8, int(ray.available_resources().get("CPU", 1))))
    data = ray.data.from_items([{"id": i, "path": str(p)} for i, p in images])
    results = data.map_batches(_Predict, fn_constructor_args=(str(model_dir), max_pixels), batch_size=BATCH,
                               concurrency=pool, num_cpus=ACTOR_CPUS, batch_format="numpy")
    for row in results.iter_rows():
        if row["error"]:
            yield int(row["id"]), str(row["error"])
        else:
            masks = row["masks"]
            yield int(row["id"]), Predictions(np.asarray(row["boxes"], dtype=np.float32).reshape(-1, 4),
                                              np.asarray(row["scores"]), np.asarray(row["labels"]),
                                              list(masks) if masks is not None else None)
