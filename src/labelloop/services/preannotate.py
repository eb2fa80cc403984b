"""Pre-annotation: run a trained model over images and store its boxes as proposals.

Proposals carry the score, the model (``source="model:ID"``, ``model_id``) and the review
state ``proposed``; the history records each as a ``create`` by the model. Human annotations
are never touched. Re-running with the same model replaces only that model's proposals that
nobody has reviewed yet; a prediction that repeats an annotation already on the image (same
class, IoU >= 0.7: a person's box, a reviewed -- even rejected -- proposal, another model's
proposal) is not proposed again. An image that cannot be decoded is reported and skipped.

Thresholds: ``auto`` chooses one per class on the validation split's precision/recall curve
(best F1, or the lowest threshold reaching ``target_precision``) and stores the choice in
``<model dir>/thresholds.json``; a number applies to every class; ``"car=0.6;person=0.3"``
sets some classes (the others use ``auto``, or the bare number in ``"0.4;car=0.6"``).

Image selection (``images``):

- ``unlabeled`` (default; ``unlabelled`` too): images with status ``new`` or ``pre-annotated``;
- ``all``: every image;
- a filter of ``key=value`` terms joined by ``;`` -- ``status=new``, ``split=val`` (``none`` =
  no split), ``name=GLOB`` (``fnmatch`` on the file name), ``ids=1,2,3``;
- anything else with ``*``, ``?`` or ``[`` is a file-name glob, e.g. ``"street/*.jpg"``.
"""

from __future__ import annotations

import fnmatch
import getpass
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from sqlalchemy import select

from labelloop.core.geometry import box_iou, clip_xyxy
from labelloop.core.predictions import Predictions, Truth
from labelloop.core.progress import StageProgress
from labelloop.core.records import UNLABELLED_STATUSES, Proposal, ReviewState
from labelloop.core.unreadable import Unreadable
from labelloop.errors import InvalidInputError, NotFoundError
from labelloop.inference.click import REPEAT_IOU
from labelloop.selection.effort import CostModel
from labelloop.selection.review_curves import ReviewCurves
from labelloop.selection.thresholds import (
    NEVER,
    RULES,
    ClassThreshold,
    parse_threshold,
    pick_threshold,
)
from labelloop.services.annotations import annotation_dict, refresh_image_status
from labelloop.services.click import keep_candidates
from labelloop.services.datasets import image_path, sample_for_images
from labelloop.services.effort import cost_model
from labelloop.services.layers import area_masks, inside_parent, parent_context
from labelloop.services.models import model_prediction
from labelloop.settings import get_settings
from labelloop.store.images import decode_rgb, write_json_atomic
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, AnnotationEvent, Image, LabelClass, TrainedModel
from labelloop.training.metrics import inside_areas

__all__ = [
    "ImageRow",
    "PredictorLike",
    "choose_thresholds",
    "default_actor",
    "load_model_predictor",
    "preannotate",
    "read_rgb",
    "resolve_model",
    "select_images",
    "write_proposals",
]

THRESHOLDS_FILE = "thresholds.json"
_EPS = 1e-6  # scores are float32
_FILTER_KEYS = ("status", "split", "name", "ids")


class PredictorLike(Protocol):
    """What the loop needs from a model (``labelloop.inference.Predictor`` or a test double)."""

    classes: list[str]
    task: str

    def predict(self, image: np.ndarray) -> Any: ...

    def embed(self, image: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class ImageRow:
    id: int
    file_name: str
    storage_path: str
    width: int
    height: int


def default_actor() -> str:
    """The OS user name (who a review is recorded under unless ``--reviewer`` says otherwise)."""
    try:
        return getpass.getuser() or "unknown"
    except (OSError, KeyError):
        return "unknown"


def resolve_model(ctx: ProjectContext, model_id: int | None) -> TrainedModel:
    """The given model, or the newest ready one; refuses a model that is not ready."""
    with ctx.store.session() as s:
        if model_id is None:
            m = s.scalars(select(TrainedModel).where(TrainedModel.project_id == ctx.id,
                                                     TrainedModel.status == "ready")
                          .order_by(TrainedModel.id.desc())).first()
            if m is None:
                raise NotFoundError("the project has no trained model yet", "train one with `labelloop train`")
        else:
            m = s.get(TrainedModel, model_id)
            if m is None or m.project_id != ctx.id:
                raise NotFoundError(f"model {model_id} is not in project {ctx.name!r}", "see `labelloop models list`")
        if m.status != "ready":
            raise InvalidInputError(f"model {m.id} is {m.status}, not ready",
                                    "pick a finished model (`labelloop models list`)")
        s.expunge(m)
        return m


def load_model_predictor(ctx: ProjectContext, model: TrainedModel, backend: str = "auto") -> PredictorLike:
    """onnxruntime when available (``auto``), else torch."""
    from labelloop.inference import load_predictor

    return load_predictor(ctx.root / model.directory, backend=backend)


def read_rgb(path: Path) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB pixels as stored (no EXIF rotation: boxes are in stored pixels), within
    ``LABELLOOP_MAX_IMAGE_PIXELS``: the one decoder, :func:`labelloop.store.images.decode_rgb`."""
    return np.asarray(decode_rgb(path, max_pixels=get_settings().max_image_pixels))


def _parse_filter(spec: str) -> dict[str, str]:
    terms: dict[str, str] = {}
    for part in (p.strip() for p in spec.split(";")):
        if not part:
            continue
        if "=" not in part:
            if any(ch in part for ch in "*?["):
                terms["name"] = part
                continue
            raise InvalidInputError(f"cannot read image filter {part!r}",
                                    "expected unlabeled, all, status=S, split=S, name=GLOB, ids=1,2 or a glob")
        key, value = (x.strip() for x in part.split("=", 1))
        if key not in _FILTER_KEYS:
            raise InvalidInputError(f"unknown image filter key {key!r}", f"expected one of: {', '.join(_FILTER_KEYS)}")
        terms[key] = value
    return terms


def select_images(ctx: ProjectContext, spec: str = "unlabeled") -> list[ImageRow]:
    """Images matching ``spec`` (see the module docstring), in id order."""
    text = (spec or "unlabeled").strip()
    q = select(Image).where(Image.project_id == ctx.id).order_by(Image.id)
    glob = None
    if text.lower() in ("unlabeled", "unlabelled"):
        q = q.where(Image.status.in_(UNLABELLED_STATUSES))
    elif text.lower() != "all":
        terms = _parse_filter(text)
        if "status" in terms:
            q = q.where(Image.status == terms["status"])
        if "split" in terms:
            q = q.where(Image.split.is_(None)) if terms["split"] == "none" else q.where(Image.split == terms["split"])
        if "ids" in terms:
            try:
                ids = [int(v) for v in terms["ids"].split(",") if v.strip()]
            except ValueError:
                raise InvalidInputError(f"ids: expected comma-separated image ids, got {terms['ids']!r}") from None
            q = q.where(Image.id.in_(ids))
        glob = terms.get("name")
    with ctx.store.session() as s:
        rows = [ImageRow(i.id, i.file_name, i.storage_path, i.width, i.height) for i in s.scalars(q)]
    if glob:
        rows = [r for r in rows if fnmatch.fnmatch(r.file_name, glob)]
    return rows


# --- thresholds -----------------------------------------------------------------------------


def _val_image_ids(ctx: ProjectContext, model: TrainedModel) -> list[int]:
    ids = list((model.snapshot or {}).get("val_images") or [])
    if ids:
        return ids
    with ctx.store.session() as s:
        return list(s.scalars(select(Image.id).where(Image.project_id == ctx.id, Image.split == "val")))


def choose_thresholds(ctx: ProjectContext, model: TrainedModel, predictor: PredictorLike, *,
                      target_precision: float | None = None, rule: str = "min-time",
                      progress: StageProgress | None = None, cache: bool = True) -> dict[str, ClassThreshold]:
    """Per-class thresholds on the model's validation images; cached in ``thresholds.json`` (``cache=False``:
    computed without reading or replacing that file, e.g. for another purpose than pre-annotation).

    ``rule``: ``min-time`` (least expected review seconds per image under the project's cost
    model) or ``best-f1``; a ``target_precision`` takes the lowest threshold reaching it. Every
    choice records the expected seconds per image at the chosen point.
    """
    if target_precision is not None and not 0.0 < target_precision <= 1.0:
        raise InvalidInputError(f"--target-precision must be in (0, 1], got {target_precision}")
    if rule not in RULES:
        raise InvalidInputError(f"unknown threshold rule {rule!r}", f"expected one of: {', '.join(RULES)}")
    costs = cost_model(ctx)
    key = {"target_precision": target_precision, "rule": rule, "costs": costs.as_dict(),
           # thresholds chosen at another prediction size are chosen again
           "predict_size": (model_prediction(ctx, model.directory) or {}).get("predict_size")}
    path = ctx.root / model.directory / THRESHOLDS_FILE
    cached = _read_cached(path, key, predictor.classes) if cache else None
    if cached is not None:
        return cached
    curves = _validation_curves(ctx, model, predictor, costs, progress)
    chosen = {name: _pick(curves, k, rule, target_precision) for k, name in enumerate(predictor.classes)}
    if not cache:
        return chosen
    expected = costs.inspect + sum(t.expected_seconds or 0.0 for t in chosen.values())
    write_json_atomic(path, {**key, "val_images": curves.n_images, "expected_seconds_per_image": round(expected, 4),
                             "classes": {n: t.as_dict() for n, t in chosen.items()}})
    return chosen


def _validation_curves(ctx: ProjectContext, model: TrainedModel, predictor: PredictorLike, costs: CostModel,
                       progress: StageProgress | None) -> ReviewCurves:
    samples = sample_for_images(ctx, _val_image_ids(ctx, model))
    project_classes = project_class_names(ctx)
    to_model = {i: predictor.classes.index(n) for i, n in enumerate(project_classes) if n in predictor.classes}
    curves = ReviewCurves(len(predictor.classes), costs)
    for done, smp in enumerate(samples, 1):
        if progress:
            progress("thresholds", done, len(samples))
        try:
            preds = predictor.predict(read_rgb(smp.path))
        except InvalidInputError:
            continue
        [smp], kept = inside_areas([smp], {smp.image_id: preds})  # training regions, a parent's regions
        gt_labels = np.array([to_model.get(int(lab), -1) for lab in smp.labels], dtype=np.int64)
        curves.add(kept[smp.image_id], Truth(smp.boxes, gt_labels))
    return curves


def _pick(curves: ReviewCurves, k: int, rule: str, target_precision: float | None) -> ClassThreshold:
    if target_precision is None and rule == "min-time":
        return curves.min_time(k)
    c = curves.curves[k]
    chosen = pick_threshold(np.array(c.scores, dtype=np.float64), np.array(c.tp, dtype=bool), c.n_gt,
                            target_precision)
    return replace(chosen, expected_seconds=curves.seconds_at(k, chosen.threshold))


def _read_cached(path: Path, key: dict[str, Any], classes: Sequence[str]) -> dict[str, ClassThreshold] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        if any(data.get(k) != v for k, v in key.items()) or set(data["classes"]) != set(classes):
            return None
        return {n: ClassThreshold(**v) for n, v in data["classes"].items()}
    except (ValueError, KeyError, TypeError):
        return None  # a damaged cache is recomputed


def project_class_names(ctx: ProjectContext) -> list[str]:
    """The active classes' names, in order."""
    with ctx.store.session() as s:
        return list(s.scalars(select(LabelClass.name).where(LabelClass.project_id == ctx.id,
                                                            LabelClass.active.is_(True))
                              .order_by(LabelClass.position)))


# --- writing proposals ------------------------------------------------------------------------


def _class_ids(ctx: ProjectContext, names: Sequence[str]) -> dict[int, int]:
    """Model label index -> project class id (classes missing from the project are left out)."""
    with ctx.store.session() as s:
        ids = dict(s.execute(select(LabelClass.name, LabelClass.id).where(LabelClass.project_id == ctx.id,
                                                                          LabelClass.active.is_(True))).all())
    return {i: ids[n] for i, n in enumerate(names) if n in ids}


def _proposals(preds: Any, thresholds: Sequence[float], class_ids: dict[int, int], width: int, height: int
               ) -> list[Proposal]:
    """The predictions above their class threshold, clipped to the image."""
    out = []
    boxes = clip_xyxy(preds.boxes, width, height)
    for i in range(len(preds)):
        k = int(preds.labels[i])
        if k not in class_ids or thresholds[k] >= NEVER or float(preds.scores[i]) < thresholds[k] - _EPS:
            continue
        x1, y1, x2, y2 = (float(v) for v in boxes[i])
        if x2 - x1 < 1 or y2 - y1 < 1:
            continue
        rle = preds.masks[i] if preds.masks is not None else None
        out.append(Proposal(class_ids[k], (x1, y1, x2, y2), round(float(preds.scores[i]), 4), rle))
    return out


def image_proposals(ctx: ProjectContext, model: TrainedModel, predictor: PredictorLike, pixels: np.ndarray,
                    width: int, height: int) -> list[tuple[str, Proposal]]:
    """The model's proposals on one image at its automatic per-class thresholds (those pre-annotation
    uses), each with its class name; classes the project does not have are left out."""
    chosen = choose_thresholds(ctx, model, predictor)
    per_index = [chosen[n].threshold for n in predictor.classes]
    class_ids = _class_ids(ctx, predictor.classes)
    names = {cid: predictor.classes[k] for k, cid in class_ids.items()}
    return [(names[p.class_id], p) for p in _proposals(predictor.predict(pixels), per_index, class_ids, width, height)]


def _not_repeated(items: Sequence[Proposal], kept: Sequence[Any]) -> list[Proposal]:
    """Drop predictions repeating an annotation already on the image (same class, IoU >= 0.7):
    a person's box, a reviewed (even rejected) proposal or another model's proposal."""
    if not kept or not items:
        return list(items)
    iou = box_iou(np.array([it.bbox for it in items]), np.array([[k[1], k[2], k[3], k[4]] for k in kept]))
    same = np.array([[it.class_id == k[0] for k in kept] for it in items], dtype=bool)
    repeated = ((iou >= REPEAT_IOU) & same).any(axis=1)
    return [it for it, rep in zip(items, repeated, strict=True) if not rep]


def write_proposals(ctx: ProjectContext, image_id: int, model: TrainedModel,
                    items: Sequence[Proposal], names: dict[int, str]) -> tuple[int, int]:
    """Replace this model's unreviewed proposals on one image by ``items``, in one transaction.

    Writes the same history as :func:`labelloop.services.annotations.create_annotation` /
    ``delete_annotation``, with the model as the actor. Returns ``(created, removed)``.
    """
    actor = f"model:{model.id}"
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        if img is None or img.project_id != ctx.id:
            raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
        stale = s.scalars(select(Annotation).where(Annotation.image_id == image_id, Annotation.source == actor,
                                                   Annotation.review_state == ReviewState.PROPOSED)).all()
        for ann in stale:
            s.add(AnnotationEvent(project_id=ctx.id, image_id=image_id, annotation_id=ann.id, action="delete",
                                  actor=actor, actor_kind="model", round=model.round,
                                  before=annotation_dict(ann, names.get(ann.class_id)), after=None))
            s.delete(ann)
        kept = s.execute(select(Annotation.class_id, Annotation.x1, Annotation.y1, Annotation.x2, Annotation.y2)
                         .where(Annotation.image_id == image_id,
                                Annotation.id.not_in([a.id for a in stale]))).all()
        created = []
        for prop in _not_repeated(items, kept):
            x1, y1, x2, y2 = prop.bbox
            ann = Annotation(project_id=ctx.id, image_id=image_id, class_id=prop.class_id, x1=x1, y1=y1, x2=x2,
                             y2=y2, rle=prop.rle, source=actor, model_id=model.id, score=prop.score,
                             review_state=ReviewState.PROPOSED, author=actor, attributes={})
            s.add(ann)
            created.append(ann)
        s.flush()
        for ann in created:
            s.add(AnnotationEvent(project_id=ctx.id, image_id=image_id, annotation_id=ann.id, action="create",
                                  actor=actor, actor_kind="model", round=model.round, before=None,
                                  after=annotation_dict(ann, names.get(ann.class_id))))
        refresh_image_status(s, img)
        return len(created), len(stale)


def _in_parent_regions(ctx: ProjectContext, parent: ProjectContext, file_name: str, props: list[Proposal]
                       ) -> tuple[list[Proposal], int]:
    """A child layer's proposals inside its parent's regions on the image (none where the parent has not
    labelled it), and how many were dropped."""
    masks = area_masks(ctx, [file_name], parent) or {}
    keep = inside_parent(masks.get(file_name), np.array([p.bbox for p in props], dtype=np.float64))
    return [p for p, k in zip(props, keep, strict=True) if k], int((~keep).sum())


ENGINES = ("auto", "local", "ray")


def _use_ray(engine: str) -> bool:
    from labelloop.inference import ray_batch

    if engine == "ray" and not ray_batch.available():
        raise InvalidInputError("engine=ray needs the job to run on a Ray cluster",
                                "start the server with --executor ray, or use engine=local")
    return engine == "ray" or (engine == "auto" and ray_batch.available())


def _ray_min() -> int:
    from labelloop.inference.ray_batch import MIN_IMAGES

    return MIN_IMAGES


def _local_rows(ctx: ProjectContext, predictor: PredictorLike,
                rows: Sequence[ImageRow]) -> Iterator[tuple[ImageRow, Predictions | str]]:
    for row in rows:
        try:
            pixels = read_rgb(image_path(ctx, row.storage_path))
        except InvalidInputError as err:
            yield row, err.message
        else:
            yield row, predictor.predict(pixels)


def _ray_rows(ctx: ProjectContext, model: TrainedModel,
              rows: Sequence[ImageRow]) -> Iterator[tuple[ImageRow, Predictions | str]]:
    """The same, on Ray Data: an actor pool of the model over the cluster (results as they finish)."""
    from labelloop.inference.ray_batch import ray_predictions

    by_id = {r.id: r for r in rows}
    for image_id, preds in ray_predictions(ctx.root / model.directory,
                                           [(r.id, image_path(ctx, r.storage_path)) for r in rows],
                                           max_pixels=get_settings().max_image_pixels):
        yield by_id[image_id], preds


def preannotate(ctx: ProjectContext, *, model_id: int | None = None, images: str = "unlabeled",
                threshold: str | float | None = "auto", target_precision: float | None = None,
                backend: str = "auto", predictor: PredictorLike | None = None,
                image_ids: Sequence[int] | None = None, progress: StageProgress | None = None,
                engine: str = "auto") -> dict[str, Any]:
    """Pre-annotate ``images`` (or exactly ``image_ids``) with a model; returns a summary.

    Summary: ``model_id``, ``round``, ``backend``, ``images`` (pre-annotated), ``proposals``
    (created), ``replaced`` (stale proposals of this model removed), ``skipped`` (images that cannot
    be read, ``[{image_id, file_name, reason}]``: more than the ``max_unreadable_share`` setting of
    them fail the run, after the others' proposals are stored) and ``thresholds`` (per class, with
    how they were chosen).

    ``engine``: ``local`` (this process), ``ray`` (Ray Data over the cluster this job runs on) or
    ``auto`` (Ray for many images when running on a Ray cluster).
    """
    if engine not in ENGINES:
        raise InvalidInputError(f"unknown engine {engine!r}", f"expected one of: {', '.join(ENGINES)}")
    model = resolve_model(ctx, model_id)
    on_ray = predictor is None and _use_ray(engine)
    predictor = predictor or load_model_predictor(ctx, model, backend)
    request = parse_threshold(threshold, predictor.classes)
    # a bad filter is reported before the (slower) automatic thresholds are computed
    rows = select_images(ctx, "all" if image_ids is not None else images)
    if image_ids is not None:
        wanted = set(image_ids)
        rows = [r for r in rows if r.id in wanted]
    auto = choose_thresholds(ctx, model, predictor, target_precision=target_precision, rule=request.rule,
                             progress=progress) if request.needs_auto else None
    chosen = request.resolve(predictor.classes, auto)
    per_index = [chosen[n].threshold for n in predictor.classes]
    class_ids = _class_ids(ctx, predictor.classes)
    names = {cid: predictor.classes[k] for k, cid in class_ids.items()}
    created = replaced = done = outside = 0
    parent = parent_context(ctx)
    skipped = Unreadable("pre-annotation")
    on_ray = on_ray and (engine == "ray" or len(rows) >= _ray_min())
    results = _ray_rows(ctx, model, rows) if on_ray else _local_rows(ctx, predictor, rows)
    for n, (row, preds) in enumerate(results, 1):
        if isinstance(preds, str):
            skipped.add(row.id, row.file_name, preds)
        else:
            keep_candidates(ctx, model.id, row.id, preds)  # a later click on this image is instant
            props = _proposals(preds, per_index, class_ids, row.width, row.height)
            if parent is not None:
                props, n_out = _in_parent_regions(ctx, parent, row.file_name, props)
                outside += n_out
            c, r = write_proposals(ctx, row.id, model, props, names)
            created, replaced, done = created + c, replaced + r, done + 1
        if progress:
            progress("pre-annotate", n, len(rows))
    skipped.check(len(rows))  # the proposals made so far are kept: they are right
    missing = [n for k, n in enumerate(predictor.classes) if k not in class_ids]
    return {"model_id": model.id, "round": model.round, "backend": getattr(predictor, "backend", "custom"),
            "engine": "ray" if on_ray else "local", "images": done, "proposals": created, "replaced": replaced,
            "skipped": skipped.items,
            "classes_not_in_project": missing,
            **({"parent_layer": parent.layer, "outside_parent": outside} if parent is not None else {}),
            "thresholds": {n: t.as_dict() for n, t in chosen.items()}}
