"""Trained models of a project: list, show, epochs, flipbook frames, compare, export."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from labelloop.core.output import output_file
from labelloop.errors import InvalidInputError, LabelloopError
from labelloop.models.artifacts import predict_size, read_model_json
from labelloop.services.datasets import sample_for_images
from labelloop.services.training import model_record, model_row
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Image, ModelEpoch, TrainedModel

__all__ = ["base_model_catalog", "compare_models", "export_model", "flipbook", "get_model", "list_models",
           "model_dir", "model_epochs", "model_lineage", "model_prediction", "render_model_flipbook"]

EXPORT_FORMATS = ("onnx", "cvat-function")


def base_model_catalog(task: str | None = None) -> list[dict[str, Any]]:
    """The base models one can train from (of ``task``, or all), as the CLI and the API show them."""
    from labelloop.models import list_base_models

    return [spec.describe() for spec in list_base_models(task)]


def model_dir(ctx: ProjectContext, model_id: int) -> Path:
    return ctx.root / model_row(ctx, model_id).directory


def list_models(ctx: ProjectContext) -> list[dict[str, Any]]:
    with ctx.store.session() as s:
        rows = s.scalars(select(TrainedModel).where(TrainedModel.project_id == ctx.id).order_by(TrainedModel.id))
        return [model_record(m) for m in rows]


def get_model(ctx: ProjectContext, model_id: int) -> dict[str, Any]:
    record = model_record(model_row(ctx, model_id))
    record["epochs"] = model_epochs(ctx, model_id)
    record["lineage"] = _lineage(ctx, model_id)
    plots = ctx.root / record["directory"] / "plots"
    record["plots"] = sorted(str(p) for p in plots.glob("*.png")) if plots.is_dir() else []
    record["prediction"] = model_prediction(ctx, record["directory"])
    return record


def model_prediction(ctx: ProjectContext, directory: str) -> dict[str, Any] | None:
    """The size a model folder predicts at (``predict_size``), the size it trained at (``input_size``)
    and the sizes its training compared (``compared``: size, scale, review seconds per validation image);
    ``None`` when the folder holds no finished model (or no model.json: a planted test model's)."""
    try:
        meta = read_model_json(ctx.root / directory)
        return {"predict_size": predict_size(meta), "input_size": int(meta["input_size"]),
                "compared": list(meta.get("predict_sizes") or [])}
    except (LabelloopError, OSError, ValueError, KeyError, TypeError):
        return None


def model_epochs(ctx: ProjectContext, model_id: int) -> list[dict[str, Any]]:
    model_row(ctx, model_id)  # a model that does not exist is a 404, not an empty history
    with ctx.store.session() as s:
        rows = s.scalars(select(ModelEpoch).where(ModelEpoch.model_id == model_id).order_by(ModelEpoch.epoch))
        return [{"epoch": e.epoch, "losses": e.losses, "metrics": e.metrics, "seconds": e.seconds} for e in rows]


#: ancestors followed at most (a guard: a parent is always older than its child)
MAX_ANCESTORS = 100


def _ancestry(ctx: ProjectContext, model_id: int) -> list[TrainedModel]:
    """The model and its ancestors, parent first (each model fine-tuned from the next)."""
    chain = [model_row(ctx, model_id)]
    while chain[-1].parent_id is not None and len(chain) <= MAX_ANCESTORS:
        chain.append(model_row(ctx, chain[-1].parent_id))
    return chain


def _lineage(ctx: ProjectContext, model_id: int) -> list[dict[str, Any]]:
    return [{"id": m.id, "name": m.name, "round": m.round, "base": m.base, "map50": (m.metrics or {}).get("map50"),
             "train_images": (m.snapshot or {}).get("n_train_images")} for m in reversed(_ancestry(ctx, model_id))]


def model_lineage(ctx: ProjectContext, model_id: int) -> dict[str, Any]:
    """The model, its ancestors (parent first) and its children (models fine-tuned from it)."""
    model, *ancestors = (model_record(m) for m in _ancestry(ctx, model_id))
    with ctx.store.session() as s:
        children = [model_record(m) for m in s.scalars(select(TrainedModel).where(
            TrainedModel.project_id == ctx.id, TrainedModel.parent_id == model_id).order_by(TrainedModel.id))]
    return {"ancestors": ancestors, "model": model, "children": children}


def flipbook(ctx: ProjectContext, model_id: int) -> dict[str, Any]:
    """The fixed validation images with ground truth, and the predictions on them epoch by epoch."""
    m = model_row(ctx, model_id)
    folder = ctx.root / m.directory / "flipbook"
    classes = list(m.classes)
    ids = list((m.snapshot or {}).get("flipbook_ids") or [])
    with ctx.store.session() as s:
        names = dict(s.execute(select(Image.id, Image.file_name).where(Image.id.in_(ids))).all())
    samples = {smp.image_id: smp for smp in sample_for_images(ctx, ids)}
    images = [{"image_id": i, "file_name": names.get(i, "?"), "width": samples[i].width,
               "height": samples[i].height,
               "ground_truth": [{"label": classes[int(lbl)] if int(lbl) < len(classes) else str(lbl),
                                 "bbox": [float(v) for v in box]}
                                for box, lbl in zip(samples[i].boxes, samples[i].labels, strict=True)]}
              for i in ids if i in samples]
    epochs = []
    for path in sorted(folder.glob("epoch_*.json")) if folder.is_dir() else []:
        frame = json.loads(path.read_text())
        preds = {}
        for img in frame.get("images", []):
            preds[img["image_id"]] = [
                {"label": classes[int(lbl)] if int(lbl) < len(classes) else str(lbl), "bbox": box, "score": sc}
                for box, sc, lbl in zip(img.get("boxes", []), img.get("scores", []), img.get("labels", []),
                                        strict=False)]
        epochs.append({"epoch": frame["epoch"], "predictions": preds})
    return {"model_id": model_id, "classes": classes, "images": images, "epochs": epochs}


def render_model_flipbook(ctx: ProjectContext, model_id: int, out: Path) -> Path:
    """The flipbook of model ``model_id`` as an animated GIF (``.gif``) or a page (``.html``) at ``out``."""
    from labelloop.training import render_flipbook

    record = get_model(ctx, model_id)
    ids = record.get("snapshot", {}).get("flipbook_ids") or \
        [img["image_id"] for img in flipbook(ctx, model_id)["images"]]
    samples = {s.image_id: s for s in sample_for_images(ctx, ids)}
    return render_flipbook(ctx.root / record["directory"], samples, out)


def compare_models(ctx: ProjectContext, ids: list[int]) -> dict[str, Any]:
    """Side by side: arguments, data, best metrics and per-class AP."""
    if len(ids) < 2:
        raise InvalidInputError("compare needs at least two model ids", "e.g. `labelloop models compare 1 2`")
    models = [model_record(model_row(ctx, i)) for i in ids]
    classes = sorted({c for m in models for c in (m["metrics"].get("ap_per_class") or {})})
    return {"models": models,
            "per_class_ap": {c: [m["metrics"].get("ap_per_class", {}).get(c) for m in models] for c in classes}}


def export_model(ctx: ProjectContext, model_id: int, *, format: str, out: Path) -> Path:
    """``onnx``: the ONNX file; ``cvat-function``: a module for cvat-cli's auto-annotation."""
    if format not in EXPORT_FORMATS:
        raise InvalidInputError(f"unknown model export format {format!r}",
                                f"expected one of: {', '.join(EXPORT_FORMATS)}")
    folder = model_dir(ctx, model_id)
    if format == "onnx":
        import shutil

        from labelloop.inference.export import current_onnx

        with output_file(out, "ONNX model") as tmp:  # (checked before the export runs)
            shutil.copyfile(current_onnx(folder), tmp)
        return out
    from labelloop.integrations.cvat import write_cvat_function

    return write_cvat_function(folder, out)
