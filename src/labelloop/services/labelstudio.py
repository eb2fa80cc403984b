"""labelloop as a Label Studio ML backend: what ``/setup``, ``/predict`` and ``/webhook`` do.

- ``setup``: reads the Label Studio project's labelling config (its box, polygon and brush controls
  and their labels), remembers it with where Label Studio is, and reports the labels the two
  projects do not share (never silently dropped).
- ``predict``: each task's image is fetched from Label Studio (and added to the labelloop project:
  the loop's suggestions see it), the newest ready model predicts it, and the boxes (or polygons,
  masks) above the model's per-class thresholds become Label Studio regions in percent, with
  each region's score, the prediction's mean score and the model version.
- ``sync_annotation`` / ``delete_annotations``: a Label Studio annotation becomes the image's
  human annotations here (author ``labelstudio:<user id>``, the Label Studio ids in the
  ``labelstudio`` attribute), replacing what that annotation brought before.
- ``start_training``: pulls every annotated task, then queues a training job on the local worker
  (fine-tuned from the newest model); the request never trains.

Where Label Studio is: ``LABELLOOP_LABEL_STUDIO_URL`` and ``LABELLOOP_LABEL_STUDIO_TOKEN`` (a
personal access token, or a legacy token), else the ``hostname`` and ``access_token`` Label
Studio sent to ``/setup``. The link is kept in the project folder's ``labelstudio.json``, with
the last sync's outcome (``labelloop`` shows it at ``/ls/<project>/status``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from sqlalchemy import select

from labelloop.core.records import AnnotationRecord
from labelloop.errors import ConfigError, InvalidInputError, LabelloopError, NotFoundError
from labelloop.integrations.labelstudio import LabelConfig, LabelStudioClient, parse_label_config
from labelloop.store.images import sha256_file, write_json_atomic
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, TrainedModel, utcnow

__all__ = ["LINK_FILE", "Link", "delete_annotations", "link", "model_version", "predict", "setup",
           "start_training", "sync_annotation"]

log = logging.getLogger("labelloop.labelstudio")
LINK_FILE = "labelstudio.json"
ACTOR_PREFIX = "labelstudio:"
#: the attribute under which an annotation keeps the Label Studio ids it came from
ATTRIBUTE = "labelstudio"
UNTRAINED = "labelloop-untrained"


@dataclass
class Link:
    """What the backend knows of the Label Studio project it serves."""

    ls_project: int | None = None
    hostname: str | None = None
    access_token: str | None = None
    label_config: str | None = None
    last_sync: str | None = None
    last_error: str | None = None
    events: int = 0
    image_refs: dict[str, int] = field(default_factory=dict)


_lock = threading.Lock()


def link_path(ctx: ProjectContext) -> Path:
    """Where a layer's link is kept: :data:`LINK_FILE` for the project's first layer, beside it
    ``labelstudio.layer-<id>.json`` for each other layer (each layer is its own backend)."""
    return ctx.root / (LINK_FILE if ctx.is_first_layer else f"labelstudio.layer-{ctx.id}.json")


def link(ctx: ProjectContext) -> Link:
    """The layer's link to Label Studio (empty before the first ``/setup``)."""
    path = link_path(ctx)
    if not path.is_file():
        return Link()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} cannot be read ({exc})", "delete it and connect Label Studio again") from None
    known = {k: v for k, v in data.items() if k in Link.__dataclass_fields__} if isinstance(data, dict) else {}
    return Link(**known)


def _save(ctx: ProjectContext, change: Callable[[Link], None]) -> Link:
    with _lock:
        current = link(ctx)
        change(current)
        write_json_atomic(link_path(ctx), asdict(current))
        return current


def client(ctx: ProjectContext, current: Link | None = None) -> LabelStudioClient:
    """A client for the Label Studio this project is linked to (the settings win over /setup's values)."""
    from labelloop.settings import get_settings

    settings = get_settings()
    current = current or link(ctx)
    url = settings.label_studio_url or current.hostname
    token = settings.label_studio_token or current.access_token or ""
    if not url:
        raise ConfigError("this project does not know where Label Studio is",
                          "set LABELLOOP_LABEL_STUDIO_URL (and LABELLOOP_LABEL_STUDIO_TOKEN), or connect the "
                          "backend from Label Studio so that it calls /setup")
    return LabelStudioClient(url, token)


def _project_id(value: Any) -> int | None:
    """Label Studio names its project ``"<id>.<created timestamp>"`` in requests (or an int in webhooks)."""
    if isinstance(value, dict):
        value = value.get("id")
    text = str(value or "").split(".")[0]
    return int(text) if text.isdigit() else None


def _class_names(ctx: ProjectContext) -> list[str]:
    from labelloop.services.preannotate import project_class_names

    return project_class_names(ctx)


def _newest_model(ctx: ProjectContext) -> TrainedModel | None:
    """The newest ready model (the one pre-annotation would use), or None before the first."""
    from labelloop.services.preannotate import resolve_model

    try:
        return resolve_model(ctx, None)
    except NotFoundError:
        return None


def model_version(ctx: ProjectContext, model: TrainedModel | None = None) -> str:
    """What Label Studio records as the predictions' ``model_version``: one name per labelloop model."""
    model = model if model is not None else _newest_model(ctx)
    return f"labelloop-{ctx.root.name}-model-{model.id}" if model is not None else UNTRAINED


def setup(ctx: ProjectContext, body: dict[str, Any]) -> dict[str, Any]:
    """Remember the Label Studio project's config and address; report the labels not shared."""
    config = parse_label_config(body.get("schema") or "")
    ours = _class_names(ctx)
    hostname = body.get("hostname") if isinstance(body.get("hostname"), str) else None
    token = body.get("access_token") if isinstance(body.get("access_token"), str) else None

    def change(current: Link) -> None:
        current.ls_project = _project_id(body.get("project")) or current.ls_project
        current.label_config = body["schema"]
        current.hostname = hostname or current.hostname
        current.access_token = token or current.access_token

    _save(ctx, change)
    unknown = [name for name in config.labels if name not in ours]
    missing = [name for name in ours if name not in config.labels]
    if unknown or missing:
        log.warning("Label Studio project %s and labelloop project %s do not share every label: only in Label "
                    "Studio %s (added here when annotated), only here %s (never predicted to Label Studio)",
                    body.get("project"), ctx.root.name, unknown, missing)
    return {"model_version": model_version(ctx), "labels": [n for n in config.labels if n in ours],
            "unknown_labels": unknown, "labels_not_in_config": missing}


# ---- images ----------------------------------------------------------------------------------------


def _image_ref(task: dict[str, Any]) -> str:
    from labelloop.formats.labelstudio import task_image_ref

    ref = task_image_ref(task) if isinstance(task, dict) else None
    if ref is None:
        raise InvalidInputError(f"task {task.get('id') if isinstance(task, dict) else task!r} has no image in its "
                                "data", "expected data.image (an /data/upload/..., local-files or http URL)")
    return ref


def _file_name(ref: str) -> str:
    parts = urlsplit(ref)
    if parts.path.endswith("/local-files/") or "d" in parse_qs(parts.query):
        name = PurePosixPath(parse_qs(parts.query).get("d", ["image"])[0]).name
    else:
        name = PurePosixPath(parts.path).name
    return name or "image"


def _image_by_sha(ctx: ProjectContext, sha: str) -> int | None:
    with ctx.store.session() as s:
        found: int | None = s.scalars(select(Image.id).where(Image.project_id == ctx.id, Image.sha256 == sha)).first()
        return found


def task_image(ctx: ProjectContext, ls: LabelStudioClient, task: dict[str, Any]) -> int:
    """The labelloop image of a task (downloaded and added the first time it is seen)."""
    from labelloop.services.images import add_image_files
    from labelloop.settings import get_settings

    ref = _image_ref(task)
    known = link(ctx).image_refs.get(ref)
    if known is not None and _image_size(ctx, known) is not None:
        return known
    ctx_tmp = ctx.root / "tmp"
    ctx_tmp.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx_tmp) as tmp:
        path = ls.download(ref, Path(tmp) / "image", task_id=task.get("id"), limit=get_settings().max_image_bytes)
        sha = sha256_file(path)
        image_id = _image_by_sha(ctx, sha)
        if image_id is None:
            report = add_image_files(ctx, [(_file_name(ref), path)], actor=f"{ACTOR_PREFIX}backend")
            if report.errors:
                raise InvalidInputError(f"the image of task {task.get('id')} ({ref}) cannot be used: "
                                        f"{report.errors[0]}")
            image_id = int(report.added[0]["id"]) if report.added else _image_by_sha(ctx, sha)
    if image_id is None:
        raise InvalidInputError(f"the image of task {task.get('id')} ({ref}) could not be stored")
    _save(ctx, lambda current: current.image_refs.__setitem__(ref, image_id))
    return image_id


def _image_size(ctx: ProjectContext, image_id: int) -> tuple[int, int] | None:
    """``(width, height)`` of a project image, or None when it is not in the project (any more)."""
    with ctx.store.session() as s:
        img = s.get(Image, image_id)
        return (img.width, img.height) if img is not None and img.project_id == ctx.id else None


# ---- predictions -----------------------------------------------------------------------------------

_predictors: OrderedDict[tuple[str, int], Any] = OrderedDict()
_predictors_lock = threading.Lock()
KEEP_PREDICTORS = 2


def _predictor(ctx: ProjectContext, model: TrainedModel) -> Any:
    """A loaded model, kept for the next request (the two most recently used)."""
    from labelloop.services.preannotate import load_model_predictor

    key = (str(ctx.root), model.id)
    with _predictors_lock:
        if key in _predictors:
            _predictors.move_to_end(key)
            return _predictors[key]
    predictor = load_model_predictor(ctx, model)
    with _predictors_lock:
        _predictors[key] = predictor
        while len(_predictors) > KEEP_PREDICTORS:
            _predictors.popitem(last=False)
    return predictor


def _regions(records: Sequence[AnnotationRecord], config: LabelConfig, task_id: Any, width: int,
             height: int) -> list[dict[str, Any]]:
    from labelloop.formats.labelstudio import region_results

    out = []
    for n, rec in enumerate(records):
        for region in region_results(rec, f"ll-{task_id}-{n}", width, height, proposal=True):
            control = config.control_for(region["type"]) or config.control_for("rectanglelabels")
            if control is None and region["type"] != "rectanglelabels":
                control = config.controls[0]
            if control is None or (control.labels and rec.label not in control.labels):
                continue
            if control.type != region["type"]:  # e.g. a polygon model, a box-only config: send the box
                region = _box_region(rec, f"ll-{task_id}-{n}", width, height)
            region.update(from_name=control.name, to_name=control.to_name)
            region.pop("labelloop", None)
            out.append(region)
    return out


def _box_region(rec: AnnotationRecord, rid: str, width: int, height: int) -> dict[str, Any]:
    from labelloop.formats.labelstudio import region_results

    box = AnnotationRecord(label=rec.label, bbox=rec.bbox, score=rec.score, source=rec.source,
                           review_state=rec.review_state)
    return region_results(box, rid, width, height, proposal=True)[0]


def predict(ctx: ProjectContext, tasks: Sequence[Any], label_config: str | None = None, *,
            predictor: Any = None) -> list[dict[str, Any]]:
    """One prediction per task, in task order (an empty one for a task whose image cannot be had:
    the error is logged and kept as the link's ``last_error``). ``predictor``: the newest model's, by default."""
    from labelloop.services.images import stored_image
    from labelloop.services.preannotate import image_proposals, read_rgb

    if not isinstance(tasks, list):
        raise InvalidInputError("expected 'tasks' to be a list of Label Studio tasks")
    current = link(ctx)
    config = parse_label_config(label_config or current.label_config or "")
    model = _newest_model(ctx)
    version = model_version(ctx, model)
    if model is None:
        return [{"result": [], "score": 0.0, "model_version": version} for _ in tasks]
    predictor = predictor or _predictor(ctx, model)
    ls = client(ctx, current)
    out = []
    for task in tasks:
        try:
            image = stored_image(ctx, task_image(ctx, ls, task))
            width, height = image.width, image.height
            proposals = image_proposals(ctx, model, predictor, read_rgb(image.path), width, height)
        except LabelloopError as err:
            _note_error(ctx, f"task {task.get('id') if isinstance(task, dict) else '?'}: {err}")
            out.append({"result": [], "score": 0.0, "model_version": version})
            continue
        records = [AnnotationRecord(label=name, bbox=p.bbox, rle=p.rle, score=p.score, source=version,
                                    review_state="proposed") for name, p in proposals]
        regions = _regions(records, config, task.get("id"), width, height)
        scores = [r["score"] for r in regions if "score" in r]
        out.append({"result": regions, "score": float(np.mean(scores)) if scores else 0.0, "model_version": version})
    return out


def _note_error(ctx: ProjectContext, message: str) -> None:
    log.error("Label Studio backend, project %s: %s", ctx.root.name, message)
    _save(ctx, lambda current: setattr(current, "last_error", f"{utcnow().isoformat()} {message}"))


def _noted(ctx: ProjectContext) -> None:
    def change(current: Link) -> None:
        current.last_sync = utcnow().isoformat()
        current.events += 1

    _save(ctx, change)


# ---- annotations -----------------------------------------------------------------------------------


def _ours(ctx: ProjectContext, annotation_ids: Sequence[int]) -> list[int]:
    """labelloop annotation ids that came from these Label Studio annotations."""
    wanted = {int(i) for i in annotation_ids}
    with ctx.store.session() as s:
        rows = s.execute(select(Annotation.id, Annotation.attributes).where(
            Annotation.project_id == ctx.id, Annotation.author.like(f"{ACTOR_PREFIX}%"))).all()
    return [aid for aid, attrs in rows if ((attrs or {}).get(ATTRIBUTE) or {}).get("annotation") in wanted]


def delete_annotations(ctx: ProjectContext, annotation_ids: Sequence[int], *, actor: str = ACTOR_PREFIX + "?") -> int:
    """Remove what these Label Studio annotations brought; returns how many labelloop annotations went."""
    from labelloop.services.annotations import delete_annotation

    gone = 0
    for aid in _ours(ctx, annotation_ids):
        try:
            delete_annotation(ctx, aid, actor=actor)
            gone += 1
        except NotFoundError:
            continue
    return gone


def sync_annotation(ctx: ProjectContext, task: dict[str, Any], annotation: dict[str, Any],
                    ls: LabelStudioClient | None = None) -> dict[str, Any]:
    """A Label Studio annotation of ``task`` becomes the image's human annotations here."""
    from labelloop.formats.labelstudio import read_regions
    from labelloop.services.annotations import AnnotationInput, create_annotation
    from labelloop.services.labels import add_labels

    if not isinstance(annotation, dict) or not isinstance(annotation.get("id"), int):
        raise InvalidInputError("expected the annotation as an object with its id")
    ls = ls or client(ctx)
    image_id = task_image(ctx, ls, task)
    actor = f"{ACTOR_PREFIX}{annotation.get('completed_by', '?')}"
    size = _image_size(ctx, image_id)
    if size is None:
        raise NotFoundError(f"image {image_id} is not in project {ctx.name!r}")
    width, height = size
    # every region is read before anything changes: a bad one refuses the whole annotation
    records = [] if annotation.get("was_cancelled") else read_regions(
        annotation.get("result") or [], width, height, where=f"task {task.get('id')} annotation {annotation['id']}")
    known = set(_class_names(ctx))
    add_labels(ctx, [n for n in dict.fromkeys(r.label for r in records) if n not in known], actor=actor)
    removed = delete_annotations(ctx, [annotation["id"]], actor=actor)
    ids = {"task": task.get("id"), "annotation": annotation["id"]}
    if annotation.get("parent_prediction") is not None:
        ids["prediction"] = annotation["parent_prediction"]
    for rec in records:
        create_annotation(ctx, image_id, AnnotationInput(
            label=rec.label, bbox=rec.bbox, polygons=rec.polygons, rle=rec.rle,
            attributes={**(rec.attributes or {}), ATTRIBUTE: ids}), actor=actor)
    return {"image_id": image_id, "added": len(records), "removed": removed}


def handle_event(ctx: ProjectContext, payload: dict[str, Any],
                 queue_training: Callable[[], int | None]) -> dict[str, Any]:
    """Carry out one webhook event (called after the response was sent); failures are noted in the link."""
    action = str(payload.get("action") or "")
    try:
        if action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
            result = sync_annotation(ctx, payload.get("task") or {}, payload.get("annotation") or {})
        elif action == "ANNOTATIONS_CREATED":
            tasks, anns = payload.get("task") or [], payload.get("annotation") or []
            ls = client(ctx)
            results = [sync_annotation(ctx, t, a, ls) for t, a in zip(tasks, anns, strict=False)]
            result = {"added": sum(r["added"] for r in results)}
        elif action in ("ANNOTATIONS_DELETED", "ANNOTATION_DELETED"):
            ids = [int(a["id"]) for a in payload.get("annotations") or [payload.get("annotation") or {}]
                   if isinstance(a, dict) and isinstance(a.get("id"), int)]
            result = {"removed": delete_annotations(ctx, ids)}
        elif action == "START_TRAINING":
            result = start_training(ctx, payload, queue_training)
        else:
            return {"status": "ignored", "action": action}
    except LabelloopError as err:
        _note_error(ctx, f"{action}: {err}")
        return {"status": "failed", "action": action, "error": str(err)}
    _noted(ctx)
    return {"status": "ok", "action": action, **result}


def start_training(ctx: ProjectContext, payload: dict[str, Any],
                   queue_training: Callable[[], int | None]) -> dict[str, Any]:
    """Pull every annotated task of the Label Studio project, then queue training."""
    current = link(ctx)
    ls_project = _project_id(payload.get("project")) or current.ls_project
    if ls_project is None:
        raise InvalidInputError("START_TRAINING did not say which Label Studio project",
                                "connect the backend from Label Studio (it calls /setup first)")
    ls = client(ctx, current)
    synced = 0
    for task in ls.tasks(ls_project):
        anns = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
        if anns:
            chosen = next((a for a in anns if a.get("ground_truth")), anns[-1])
            sync_annotation(ctx, task, chosen, ls)
            synced += 1
    job_id = queue_training()
    return {"tasks_synced": synced, "job_id": job_id}


def queue_training(ctx: ProjectContext, slug: str, executor: Any, *, actor: str,
                   project_id: int | None) -> int | None:
    """A training job on the worker (fine-tuned from the newest model); None when one is already
    queued or running for this project (its result will include these annotations only if they
    arrived before it started, so a later START_TRAINING trains again)."""
    from labelloop.jobs.records import list_jobs

    busy = [j for j in list_jobs(executor.store, project=slug, kind="train", limit=20)
            if j["status"] in ("queued", "running") and (j["params"].get("layer") or "") in (ctx.layer_ref, ctx.layer)]
    if busy:
        return None
    newest = _newest_model(ctx)
    params: dict[str, Any] = {"project": slug, "layer": ctx.layer_ref}
    if newest is not None:
        params["from_model"] = newest.id
    job_id: int = executor.submit("train", params, project_id=project_id, actor=actor)
    return job_id


def versions(ctx: ProjectContext) -> list[str]:
    """Every ready model's version, newest first."""
    with ctx.store.session() as s:
        models = s.scalars(select(TrainedModel).where(TrainedModel.project_id == ctx.id,
                                                      TrainedModel.status == "ready")
                           .order_by(TrainedModel.id.desc())).all()
        return [model_version(ctx, m) for m in models] or [UNTRAINED]


def status(ctx: ProjectContext) -> dict[str, Any]:
    """What a person checks when Label Studio shows nothing: the link, the last sync and its error."""
    current = link(ctx)
    try:
        labels = parse_label_config(current.label_config).labels if current.label_config else []
    except InvalidInputError:
        labels = []
    from labelloop.settings import get_settings

    return {"model_version": model_version(ctx), "label_studio_project": current.ls_project,
            "label_studio_url": get_settings().label_studio_url or current.hostname, "labels": labels,
            "last_sync": current.last_sync, "last_error": current.last_error, "events": current.events,
            "images_seen": len(current.image_refs)}
