"""Projects, their classes, statistics, the home overview and the train/val split."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi import Path as PathParam

from labelloop.api import responses as rs
from labelloop.api.deps import CurrentUser, Project, ServerState, permission, state
from labelloop.api.schemas import ClassesIn, LayerIn, LayerRenameIn, MergeIn, ProjectIn, RenameIn, SplitIn
from labelloop.services import labels as label_service
from labelloop.services import layers as layer_service
from labelloop.services import users
from labelloop.services.layers import list_layers
from labelloop.services.projects import project_overview
from labelloop.services.splitting import assign_splits
from labelloop.services.stats import project_stats
from labelloop.services.users import UserInfo
from labelloop.settings import get_settings

router = APIRouter(prefix="/api/projects", tags=["projects"])
State = Annotated[ServerState, Depends(state)]


@router.get("", response_model=list[rs.ProjectSummary], response_model_exclude_unset=True, summary="List projects")
def list_projects(user: CurrentUser, st: State) -> list[dict[str, Any]]:
    users.require(user, "project.view")
    return [_visible(summary, user) for summary in st.registry.list()]


def _visible(summary: dict[str, Any], user: UserInfo) -> dict[str, Any]:
    """A project summary as ``user`` may see it: where it lives on the server is for admins only."""
    return summary if users.can(user, "users.manage") else {k: v for k, v in summary.items() if k != "root"}


@router.post("", response_model=rs.ProjectSummary, response_model_exclude_unset=True, status_code=201,
             summary="Create a project")
def create_project(body: ProjectIn, _: Annotated[UserInfo, Depends(permission("project.create"))],
                   st: State) -> dict[str, Any]:
    return st.registry.create(body.name, task=body.task, labels=body.labels, slug=body.slug)


@router.get("/{slug}", response_model=rs.ProjectSummary, response_model_exclude_unset=True,
            summary="A project's summary")
def get_project(slug: str, ctx: Project, st: State, user: CurrentUser) -> dict[str, Any]:
    return _visible(st.registry.summary(slug), user)


@router.delete("/{slug}", response_model=rs.Ok, summary="Delete a project with its images, annotations and models")
def delete_project(slug: str, _: Annotated[UserInfo, Depends(permission("project.delete"))],
                   st: State) -> dict[str, Any]:
    st.registry.delete(slug)
    return {"ok": True}


@router.get("/{slug}/overview", response_model=rs.Overview, response_model_exclude_unset=True,
            summary="The project home: counts per class, current model, next steps")
def overview(ctx: Project) -> dict[str, Any]:
    return project_overview(ctx)


@router.get("/{slug}/stats", response_model=rs.Stats,
            summary="Images by status and split, annotations per class against the target")
def stats(ctx: Project) -> dict[str, Any]:
    return project_stats(ctx)


@router.post("/{slug}/split", response_model=rs.SplitResult,
             summary="Assign train/val(/test) to labelled images without a split")
def split(body: SplitIn, ctx: Project, _: Annotated[UserInfo, Depends(permission("classes.edit"))]) -> dict[str, Any]:
    return assign_splits(ctx, val=body.val, test=body.test, seed=body.seed)


@router.get("/{slug}/layers", response_model=list[rs.Layer], summary="The project's layers and their classes' progress")
def layers(ctx: Project) -> list[dict[str, Any]]:
    return list_layers(ctx, get_settings().target_per_class)


@router.post("/{slug}/layers", response_model=list[rs.Layer], status_code=201,
             summary="Add a layer (regions, or objects inside a parent layer's regions)")
def add_layer(body: LayerIn, ctx: Project,
              user: Annotated[UserInfo, Depends(permission("classes.edit"))]) -> list[dict[str, Any]]:
    layer_service.add_layer(ctx, body.name, body.kind, parent=body.parent, labels=body.labels, actor=user.username)
    return list_layers(ctx, get_settings().target_per_class)


LayerName = Annotated[str, PathParam(description="the layer's name", max_length=100)]


@router.patch("/{slug}/layers/{name}", response_model=list[rs.Layer], summary="Rename a layer (its work is kept)")
def rename_layer(name: LayerName, body: LayerRenameIn, ctx: Project,
                 user: Annotated[UserInfo, Depends(permission("classes.edit"))]) -> list[dict[str, Any]]:
    layer_service.rename_layer(ctx, name, body.name)
    return list_layers(ctx, get_settings().target_per_class)


@router.delete("/{slug}/layers/{name}", response_model=rs.LayerDeleted,
               summary="Delete a layer with its classes, annotations and models (not the first; children first)")
def delete_layer(name: LayerName, ctx: Project,
                 user: Annotated[UserInfo, Depends(permission("project.delete"))]) -> dict[str, Any]:
    return layer_service.delete_layer(ctx, name)


@router.get("/{slug}/region-counts", response_model=list[rs.RegionCount],
            summary="This layer's objects counted in each region of its parent layer")
def regions(ctx: Project) -> list[dict[str, Any]]:
    return layer_service.region_counts(ctx)


@router.get("/{slug}/classes", response_model=list[rs.ClassInfo], summary="Active classes with their annotation counts")
def list_classes(ctx: Project) -> list[dict[str, Any]]:
    return label_service.list_labels(ctx)


@router.post("/{slug}/classes", response_model=list[rs.ClassInfo], status_code=201, summary="Add classes")
def add_classes(body: ClassesIn, ctx: Project,
                user: Annotated[UserInfo, Depends(permission("classes.edit"))]) -> list[dict[str, Any]]:
    label_service.add_labels(ctx, body.names, actor=user.username)
    return label_service.list_labels(ctx)


@router.post("/{slug}/classes/rename", response_model=list[rs.ClassInfo], summary="Rename a class")
def rename_class(body: RenameIn, ctx: Project,
                 user: Annotated[UserInfo, Depends(permission("classes.edit"))]) -> list[dict[str, Any]]:
    label_service.rename_label(ctx, body.old, body.new, actor=user.username)
    return label_service.list_labels(ctx)


@router.post("/{slug}/classes/merge", response_model=rs.MergeResult,
             summary="Merge classes into one (their annotations move)")
def merge_classes(body: MergeIn, ctx: Project,
                  user: Annotated[UserInfo, Depends(permission("classes.edit"))]) -> dict[str, Any]:
    moved = label_service.merge_labels(ctx, body.sources, body.target, actor=user.username)
    return {"moved": moved, "classes": label_service.list_labels(ctx)}
