"""Label QA: find labels that look wrong, ranked by how likely they are errors.

Model-based checks need predictions the model did not train on:

- default: the validation split with the given (or latest) model -- it never trained on those images;
- ``folds=K``: all labelled images are split into K folds and K quick models are trained
  (each on the other folds, arguments from ``args``), so every labelled image gets out-of-fold
  predictions. Costly on CPU; keep ``args`` small (e.g. ``epochs=5;image_size=320``).

Checks without a model, over all labelled images: duplicate boxes and classes whose object
sizes vary too widely. See :mod:`labelloop.selection.qa` for the kinds and their scores.
"""

from __future__ import annotations

import hashlib
import shutil
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import select

from labelloop.core.predictions import Predictions, Truth
from labelloop.core.progress import EpochStages, StageProgress
from labelloop.core.records import LABELLED_STATUSES
from labelloop.core.unreadable import Unreadable
from labelloop.errors import InvalidInputError
from labelloop.selection.qa import (
    LabelIssue,
    QAThresholds,
    duplicate_issues,
    image_label_issues,
    size_spread_issues,
)
from labelloop.services.datasets import image_path
from labelloop.services.preannotate import PredictorLike, load_model_predictor, read_rgb, resolve_model
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass, is_ground_truth

__all__ = ["GroundTruth", "find_label_issues", "ground_truth"]



@dataclass(frozen=True)
class GroundTruth:
    """Labelled objects of one image: ``boxes (N, 4)`` xyxy px, ``labels (N,)`` into ``classes``, ids."""

    image_id: int
    file_name: str
    path: str
    split: str | None
    boxes: np.ndarray
    labels: np.ndarray
    ids: list[int]


def ground_truth(ctx: ProjectContext) -> tuple[list[str], list[GroundTruth]]:
    """The project's classes and the ground truth of every labelled image."""
    with ctx.store.session() as s:
        classes = list(s.execute(select(LabelClass.id, LabelClass.name).where(
            LabelClass.project_id == ctx.id, LabelClass.active.is_(True)).order_by(LabelClass.position)).all())
        index = {cid: i for i, (cid, _) in enumerate(classes)}
        images = s.execute(select(Image.id, Image.file_name, Image.storage_path, Image.split).where(
            Image.project_id == ctx.id, Image.status.in_(LABELLED_STATUSES)).order_by(Image.id)).all()
        objects: dict[int, list[tuple[int, list[float], int]]] = defaultdict(list)
        gt = select(Annotation).where(Annotation.project_id == ctx.id, is_ground_truth()).order_by(Annotation.id)
        for a in s.scalars(gt):
            if a.class_id in index:
                objects[a.image_id].append((a.id, [a.x1, a.y1, a.x2, a.y2], index[a.class_id]))
    out = []
    for iid, name, path, split in images:
        objs = objects.get(iid, [])
        out.append(GroundTruth(iid, name, path, split,
                               np.array([o[1] for o in objs], dtype=np.float64).reshape(-1, 4),
                               np.array([o[2] for o in objs], dtype=np.int64), [o[0] for o in objs]))
    return [n for _, n in classes], out


def _model_issues(ctx: ProjectContext, predictor: PredictorLike, classes: Sequence[str],
                  images: Sequence[GroundTruth], th: QAThresholds, progress: StageProgress | None,
                  unreadable: Unreadable, stage: str = "predict") -> list[LabelIssue]:
    """Compare predictions with ground truth; model labels are mapped to project classes by name."""
    to_project = np.array([classes.index(n) if n in classes else -1 for n in predictor.classes] or [-1])
    issues: list[LabelIssue] = []
    for done, gt in enumerate(images, 1):
        try:
            preds = predictor.predict(read_rgb(image_path(ctx, gt.path)))
        except InvalidInputError as err:
            unreadable.add(gt.image_id, gt.file_name, err.message)
            continue
        labels = to_project[preds.labels] if len(preds) else preds.labels
        known = labels >= 0
        in_project = Predictions(preds.boxes[known], preds.scores[known], labels[known])
        issues.extend(image_label_issues(gt.image_id, Truth(gt.boxes, gt.labels, tuple(gt.ids)), in_project,
                                         classes, th))
        if progress:
            progress(stage, done, len(images))
    return issues


def _fold_of(image_id: int, folds: int) -> int:
    return int(hashlib.sha256(f"qa:{image_id}".encode()).hexdigest(), 16) % folds


def _out_of_fold_issues(ctx: ProjectContext, folds: int, args: str, base: str | None, classes: Sequence[str],
                        images: Sequence[GroundTruth], th: QAThresholds, progress: StageProgress | None,
                        unreadable: Unreadable) -> list[LabelIssue]:
    """Train ``folds`` quick models, each predicting the fold it did not see."""
    from labelloop.core.samples import TrainingData
    from labelloop.inference import load_predictor
    from labelloop.services.datasets import sample_for_images
    from labelloop.training import derive_defaults, train_model

    samples = {s.image_id: s for s in sample_for_images(ctx, [g.image_id for g in images])}
    issues: list[LabelIssue] = []
    work = ctx.root / "qa-folds"
    try:
        for k in range(folds):
            held = [g for g in images if _fold_of(g.image_id, folds) == k]
            train = [samples[g.image_id] for g in images if _fold_of(g.image_id, folds) != k]
            if not held or not train:
                continue
            data = TrainingData(classes=list(classes), task=ctx.task, train=train,
                                val=[samples[g.image_id] for g in held])
            config = derive_defaults(data, base=base, overrides=args or None)
            out = work / f"fold-{k}"
            train_model(data, config, out, progress=EpochStages(progress, f"train fold {k + 1}", config.epochs))
            predictor = load_predictor(out, backend="torch")
            issues.extend(_model_issues(ctx, predictor, classes, held, th, progress, unreadable,
                                        f"check fold {k + 1}"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return issues


def find_label_issues(ctx: ProjectContext, *, model_id: int | None = None, folds: int = 0, args: str = "",
                      base: str | None = None, predictor: PredictorLike | None = None, min_score: float = 0.5,
                      backend: str = "auto", limit: int | None = None, progress: StageProgress | None = None,
                      unreadable: Unreadable | None = None) -> list[dict[str, Any]]:
    """Likely label errors, most likely first. Images that cannot be read are not checked and are
    listed in ``unreadable`` (when given); more than the ``max_unreadable_share`` setting of the
    checked images fail the check.

    Each item: ``kind`` (wrong_class, missing_box, bad_box, duplicate, size_spread),
    ``image_id``, ``file_name``, ``annotation_id`` (the suspicious label; None for a missing box
    or a class-level finding), ``score``, ``message``, ``label``, ``predicted_label``, ``bbox``, ``iou``.
    """
    if folds == 1 or folds < 0:
        raise InvalidInputError(f"--folds must be 0 (use the validation split) or >= 2, got {folds}")
    if not 0.0 <= min_score <= 1.0:
        raise InvalidInputError(f"--min-score must be in [0, 1], got {min_score}")
    th = QAThresholds(min_score=min_score)
    unreadable = unreadable if unreadable is not None else Unreadable("label check")
    classes, images = ground_truth(ctx)
    issues: list[LabelIssue] = []
    for gt in images:
        issues.extend(duplicate_issues(gt.image_id, Truth(gt.boxes, gt.labels, tuple(gt.ids)), classes, th))
    areas: dict[str, list[float]] = defaultdict(list)
    for gt in images:
        for box, lab in zip(gt.boxes, gt.labels, strict=True):
            areas[classes[lab]].append(float((box[2] - box[0]) * (box[3] - box[1])))
    issues.extend(size_spread_issues(areas, th))
    if folds >= 2:
        issues.extend(_out_of_fold_issues(ctx, folds, args, base, classes, images, th, progress, unreadable))
        unreadable.check(len(images))
    else:
        if predictor is None:
            predictor = load_model_predictor(ctx, resolve_model(ctx, model_id), backend)
        val = [g for g in images if g.split == "val"]
        if not val:
            raise InvalidInputError("no labelled validation images to check",
                                    "run `labelloop split`, or use --folds 3 to check every labelled image")
        issues.extend(_model_issues(ctx, predictor, classes, val, th, progress, unreadable))
        unreadable.check(len(val))
    names = {g.image_id: g.file_name for g in images}
    ranked = sorted(issues, key=lambda i: -i.score)
    if limit is not None:
        ranked = ranked[:limit]
    return [{**i.as_dict(), "file_name": names.get(i.image_id) if i.image_id is not None else None}
            for i in ranked]
