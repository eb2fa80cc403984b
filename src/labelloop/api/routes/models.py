"""Models: the base-model catalog, trained models, metrics per epoch, the flipbook, lineage,
comparison and export, served by :mod:`labelloop.services.models`."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from labelloop.api import responses as rs
from labelloop.api.deps import CurrentUser, Id, Project, ServerState, permission, state
from labelloop.errors import InvalidInputError
from labelloop.services import models as svc
from labelloop.services.archives import zip_folder
from labelloop.services.users import UserInfo

router = APIRouter(tags=["models"])
State = Annotated[ServerState, Depends(state)]


@router.get("/api/base-models", response_model=list[rs.BaseModelInfo],
            summary="The base models one can train from, with guidance")
def base_models(_: CurrentUser, task: str | None = None) -> list[dict[str, Any]]:
    return svc.base_model_catalog(task or None)


@router.get("/api/projects/{slug}/models", response_model=list[rs.ModelRecord], summary="The project's trained models")
def list_models(ctx: Project) -> list[dict[str, Any]]:
    return svc.list_models(ctx)


@router.get("/api/projects/{slug}/models/compare", response_model=rs.ModelComparison,
            summary="Compare models (ids=1,2,3)")
def compare(ctx: Project, ids: Annotated[str, Query(description="comma-separated model ids")]) -> Any:
    try:
        model_ids = [int(v) for v in ids.split(",") if v.strip()]
    except ValueError as exc:
        raise InvalidInputError(f"ids must be numbers separated by commas, got {ids!r}") from exc
    if len(model_ids) < 1:
        raise InvalidInputError("give at least one model id")
    return svc.compare_models(ctx, model_ids)


@router.get("/api/projects/{slug}/models/{model_id}", response_model=rs.ModelDetail,
            summary="One model with its metrics")
def get_model(model_id: Id, ctx: Project) -> Any:
    return svc.get_model(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/epochs", response_model=list[rs.ModelEpoch],
            summary="Losses and metrics per epoch")
def epochs(model_id: Id, ctx: Project) -> Any:
    return svc.model_epochs(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/flipbook", response_model=rs.Flipbook,
            summary="Predictions on fixed validation images at every epoch, beside the ground truth")
def flipbook(model_id: Id, ctx: Project) -> Any:
    return svc.flipbook(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/lineage", response_model=rs.Lineage,
            summary="The model's ancestors and descendants")
def lineage(model_id: Id, ctx: Project) -> dict[str, Any]:
    return svc.model_lineage(ctx, model_id)


@router.get("/api/projects/{slug}/models/{model_id}/export", response_class=FileResponse,
            summary="Download the model: format=onnx (an .onnx file) or cvat-function (a zip)")
def export(model_id: Id, ctx: Project, st: State, _: Annotated[UserInfo, Depends(permission("data.export"))],
           format: str = "onnx") -> FileResponse:
    st.registry.paths.tmp.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="model-export-", dir=st.registry.paths.tmp))
    stem = f"{ctx.root.name}-model-{model_id}"
    try:
        target = folder / (f"{stem}.onnx" if format == "onnx" else f"{stem}-{format}")
        path = Path(svc.export_model(ctx, model_id, format=format, out=target))
        if path.is_dir():
            path = zip_folder(path, folder / f"{stem}-{format}.zip")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(path, filename=path.name, background=BackgroundTask(shutil.rmtree, folder, True))
