"""Click-to-box (and click-to-mask): one click on an object the model missed, and its best
candidate there becomes a human annotation.

The candidates of an image are the model's raw output (every box above the model's own
score floor, below the proposal thresholds too). They are computed on first use and kept in
memory (the newest :data:`CACHE_IMAGES` images) and on disk under
``cache/candidates/m<model>/<image>.json``, so the next click on the same image only runs the
pick rule of :func:`labelloop.inference.click.click_candidate`. Pre-annotation fills both as it
goes (:func:`keep_candidates`), so a click on a pre-annotated image never waits for the model.

The annotation is a person's (``source="human"``, no review needed), with its provenance in
``attributes.assisted_by = "model:N"`` and the history action ``click`` (priced by the cost
model's ``click``, 2 s by default, instead of a 7 s ``draw``).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

from labelloop.core.geometry import clip_xyxy
from labelloop.core.predictions import Predictions
from labelloop.core.records import ReviewState
from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.inference.click import click_candidate
from labelloop.services.annotations import AnnotationInput, create_annotation
from labelloop.services.datasets import image_path
from labelloop.store.images import write_json_atomic
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, TrainedModel

__all__ = ["CACHE_IMAGES", "add_candidate", "candidate_at", "click_to_box", "image_candidates", "keep_candidates",
           "remember_candidates", "warm_candidates"]

#: images whose candidates are kept in memory per process
CACHE_IMAGES = 256
_MEMORY: OrderedDict[tuple[str, int, int], Predictions] = OrderedDict()
_PREDICTORS: dict[tuple[str, int], Any] = {}
_LOCK = threading.Lock()


def _key(ctx: ProjectContext, model_id: int, image_id: int) -> tuple[str, int, int]:
    return (str(ctx.root), model_id, image_id)


def remember_candidates(ctx: ProjectContext, model_id: int, image_id: int, preds: Predictions) -> None:
    """Keep an image's raw predictions for later clicks (pre-annotation calls this)."""
    with _LOCK:
        _MEMORY[_key(ctx, model_id, image_id)] = preds
        _MEMORY.move_to_end(_key(ctx, model_id, image_id))
        while len(_MEMORY) > CACHE_IMAGES:
            _MEMORY.popitem(last=False)


def _disk_path(ctx: ProjectContext, model_id: int, image_id: int) -> Path:
    return ctx.root / "cache" / "candidates" / f"m{model_id}" / f"{image_id}.json"


def keep_candidates(ctx: ProjectContext, model_id: int, image_id: int, preds: Predictions) -> None:
    """Keep an image's raw predictions in memory and on disk: pre-annotation runs in a job worker, and
    the server that answers the clicks finds them there instead of predicting the image again (at a
    model's bigger prediction size that is most of a second on a CPU)."""
    write_json_atomic(_disk_path(ctx, model_id, image_id), preds.to_json())
    remember_candidates(ctx, model_id, image_id, preds)


def _read_disk(path: Path) -> Predictions | None:
    try:
        data = json.loads(path.read_text())
        return Predictions(np.array(data["boxes"], dtype=np.float32), np.array(data["scores"]),
                           np.array(data["labels"]), data.get("masks"))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # missing or damaged: computed again


def _predictor(ctx: ProjectContext, model: TrainedModel) -> Any:
    from labelloop.services.preannotate import load_model_predictor

    key = (str(ctx.root / model.directory), model.id)
    with _LOCK:
        if key in _PREDICTORS:
            return _PREDICTORS[key]
    predictor = load_model_predictor(ctx, model)
    with _LOCK:
        if len(_PREDICTORS) >= 4:  # a few models at most: each holds an inference session
            _PREDICTORS.pop(next(iter(_PREDICTORS)))
        _PREDICTORS[key] = predictor
    return predictor


def image_candidates(ctx: ProjectContext, model: TrainedModel, image_id: int, predictor: Any = None) -> Predictions:
    """The model's raw predictions on one image (memory cache, disk cache, or computed now)."""
    from labelloop.services.preannotate import read_rgb

    key = _key(ctx, model.id, image_id)
    with _LOCK:
        if key in _MEMORY:
            _MEMORY.move_to_end(key)
            return _MEMORY[key]
    path = _disk_path(ctx, model.id, image_id)
    preds = _read_disk(path) if path.is_file() else None
    if preds is not None:
        remember_candidates(ctx, model.id, image_id, preds)
        return preds
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        if img is None or img.project_id != ctx.id:
            raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
        file = image_path(ctx, img.storage_path)
    preds = (predictor or _predictor(ctx, model)).predict(read_rgb(file))
    keep_candidates(ctx, model.id, image_id, preds)
    return preds


def warm_candidates(ctx: ProjectContext, image_id: int, *, model_id: int | None = None) -> dict[str, Any]:
    """Compute (or find) an image's candidates ahead of the first click: ``{"model_id", "candidates"}``."""
    from labelloop.services.preannotate import resolve_model

    model = resolve_model(ctx, model_id)
    return {"model_id": model.id, "candidates": len(image_candidates(ctx, model, image_id))}


def _existing_boxes(ctx: ProjectContext, image_id: int) -> np.ndarray:
    with ctx.store.session() as s:
        rows = s.execute(select(Annotation.x1, Annotation.y1, Annotation.x2, Annotation.y2).where(
            Annotation.image_id == image_id,
            (Annotation.review_state.is_(None)) | (Annotation.review_state != ReviewState.REJECTED))).all()
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def candidate_at(ctx: ProjectContext, image_id: int, x: float, y: float, *, model_id: int | None = None,
                 predictor: Any = None) -> tuple[TrainedModel, Predictions, int | None]:
    """The model, its candidates on the image, and the index a click at ``(x, y)`` picks
    (``None``: no candidate there that is not already annotated)."""
    from labelloop.services.preannotate import resolve_model

    if not (np.isfinite(x) and np.isfinite(y)):
        raise InvalidInputError(f"click at ({x}, {y}): expected finite pixel coordinates")
    model = resolve_model(ctx, model_id)
    preds = image_candidates(ctx, model, image_id, predictor)
    return model, preds, click_candidate(preds.boxes, preds.scores, x, y, _existing_boxes(ctx, image_id))


def add_candidate(ctx: ProjectContext, image_id: int, model: TrainedModel, preds: Predictions, k: int, *,
                  actor: str, label: str | None = None, round_: int | None = None) -> dict[str, Any]:
    """Store candidate ``k`` as a person's annotation (history action ``click``), clipped to the image."""
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        if img is None or img.project_id != ctx.id:
            raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
        w, h = img.width, img.height
    x1, y1, x2, y2 = (float(v) for v in clip_xyxy(preds.boxes[k : k + 1], w, h)[0])
    rle = preds.masks[k] if preds.masks is not None and ctx.task != "detect" else None
    data = AnnotationInput(label=label or list(model.classes)[int(preds.labels[k])], bbox=(x1, y1, x2, y2), rle=rle,
                           attributes={"assisted_by": f"model:{model.id}",
                                       "candidate_score": round(float(preds.scores[k]), 4)})
    return create_annotation(ctx, image_id, data, actor=actor, round_=round_, action="click")


def click_to_box(ctx: ProjectContext, image_id: int, x: float, y: float, *, actor: str, label: str | None = None,
                 model_id: int | None = None, predictor: Any = None, round_: int | None = None) -> dict[str, Any]:
    """Add the model's best candidate at ``(x, y)`` (image pixels) as a human annotation.

    ``label``: the class to give it (the active class); ``None`` keeps the model's class.
    Raises :class:`NotFoundError` when the model has no candidate there (draw it instead).
    """
    model, preds, k = candidate_at(ctx, image_id, x, y, model_id=model_id, predictor=predictor)
    if k is None:
        raise NotFoundError(f"model {model.id} has no candidate at ({x:.0f}, {y:.0f}) that is not already annotated",
                            "draw the box instead")
    return add_candidate(ctx, image_id, model, preds, k, actor=actor, label=label, round_=round_)
