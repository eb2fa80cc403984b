"""Models: the base-model catalog, trained models, metrics per epoch, the flipbook, lineage,
comparison and export. Served by ``labelloop.services.models``; until that exists these routes
answer 501 "not available yet"."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from labelloop.api.deps import CurrentUser, Project, ServerState, optional_service, permission, state
from labelloop.api.routes.transfer import zip_folder
from labelloop.errors import InvalidInputError
from labelloop.services.users import UserInfo

router = APIRouter(tags=["models"])
State = Annotated[ServerState, Depends(state)]
_MODELS = "labelloop.services.models"


def _svc(name: str) -> Any:
    return optional_service(_MODELS, name, "model management")


@router.get("/api/base-models", summary="The base models one can train from, with guidance")
def base_models(_: CurrentUser, task: str | None = None) -> list[dict[str, Any]]:
    catalog = optional_service("labelloop.models", "list_base_models", "the base-model catalog")
    out = []
    for spec in catalog():
        if task and getattr(spec, "task", None) != task:
            continue
        out.append({"name": spec.name, "task": spec.task, "summary": spec.summary, "guidance": spec.guidance,
                    "default": bool(getattr(spec, "default", False)),
                    "input_size": getattr(spec, "input_size", None)})
    return out


@router.get("/api/projects/{slug}/models", summary="The project's trained models")
def list_models(ctx: Project) -> list[dict[str, Any]]:
    return list(_svc("list_models")(ctx))


@router.get("/api/projects/{slug}/models/compare", summary="Compare models (ids=1,2,3)")
def compare(ctx: Project, ids: Annotated[str, Query(description="comma-separated model ids")]) -> Any:
    try:
        model_ids = [int(v) for v in ids.split(",") if v.strip()]
    except ValueError as exc:
        raise InvalidInputError(f"ids must be numbers separated by commas, got {ids!r}") from exc
    if len(model_ids) < 1:
        raise InvalidInputError("give at least one model id")
    return _svc("compare_models")(ctx, model_ids)


@router.get("/api/projects/{slug}/models/{model_id}", summary="One model with its metrics")
def get_model(model_id: int, ctx: Project) -> Any:
    return _svc("get_model")(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/epochs", summary="Losses and metrics per epoch")
def epochs(model_id: int, ctx: Project) -> Any:
    return _svc("model_epochs")(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/flipbook",
            summary="Predictions on fixed validation images at every epoch, beside the ground truth")
def flipbook(model_id: int, ctx: Project) -> Any:
    return _svc("flipbook")(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/lineage", summary="The model's ancestors and descendants")
def lineage(model_id: int, ctx: Project) -> dict[str, Any]:
    models = {m["id"]: m for m in _svc("list_models")(ctx) if isinstance(m, dict) and "id" in m}
    if model_id not in models:
        models[model_id] = _svc("get_model")(ctx, model_id)
    chain: list[dict[str, Any]] = []
    current: Any = models.get(model_id)
    while current is not None and len(chain) < 100:
        chain.append(current)
        parent = current.get("parent_id")
        current = models.get(parent) if parent is not None else None
    children = [m for m in models.values() if m.get("parent_id") == model_id]
    return {"ancestors": chain[1:], "model": chain[0] if chain else None, "children": children}


@router.get("/api/projects/{slug}/models/{model_id}/export", response_class=FileResponse,
            summary="Download the model: format=onnx (an .onnx file) or cvat-function (a zip)")
def export(model_id: int, ctx: Project, st: State, _: Annotated[UserInfo, Depends(permission("data.export"))],
           format: str = "onnx") -> FileResponse:
    run = _svc("export_model")
    st.registry.paths.tmp.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="model-export-", dir=st.registry.paths.tmp))
    stem = f"{ctx.root.name}-model-{model_id}"
    try:
        target = folder / (f"{stem}.onnx" if format == "onnx" else f"{stem}-{format}")
        path = Path(run(ctx, model_id, format=format, out=target))
        if path.is_dir():
            path = zip_folder(path, folder / f"{stem}-{format}.zip")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, filename=path.name, background=BackgroundTask(shutil.rmtree, folder, True))
