"""Label Studio's ML backend protocol for one project, under ``/ls/<project>``: give Label Studio
``http://<this server>/ls/<project>`` as the model's URL (Settings > Model > Connect Model). A project
of several layers serves its first there, and layer ``<name>`` under ``/ls/<project>/layers/<name>``.

Label Studio authenticates with basic auth (a labelloop user name and, as password, one of that
user's API tokens, or the password itself) or ``Authorization: Bearer <API token>``. Its annotation
webhooks carry no credentials of their own: give the webhook an ``Authorization`` header (see the
README). ``/webhook`` answers at once; the work (fetching images, storing annotations, queueing a
training job) runs after the answer, and its outcome is at ``/ls/<project>/status``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from labelloop.api.deps import ServerState, current_user, state
from labelloop.errors import LabelloopError
from labelloop.services import labelstudio as ls
from labelloop.services import users
from labelloop.services.layers import layer_context
from labelloop.services.users import UserInfo
from labelloop.store.project import ProjectContext

_routes = APIRouter(tags=["Label Studio ML backend"])
State = Annotated[ServerState, Depends(state)]


def _basic(header: str) -> tuple[str, str]:
    try:
        user, sep, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep, secret = "", "", ""
    if not sep:
        raise HTTPException(401, "malformed basic auth header", headers={"WWW-Authenticate": 'Basic realm="labelloop"'})
    return user, secret


async def ls_user(request: Request, st: State) -> UserInfo:
    """Basic auth (user name and API token, or password) or the usual bearer token."""
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return await current_user(request, st)
    name, secret = _basic(header)
    info = users.user_for_token(st.store, secret) if secret.startswith("ll_") else None
    if info is None and not secret.startswith("ll_"):
        try:
            info = await run_in_threadpool(users.authenticate, st.store, name, secret)
        except LabelloopError:
            info = None
    if info is None or (name and info.username != name):
        raise HTTPException(401, "wrong user name, password or API token for the labelloop ML backend",
                            headers={"WWW-Authenticate": 'Basic realm="labelloop"'})
    return info


LsUser = Annotated[UserInfo, Depends(ls_user)]


async def ls_project(slug: str, user: LsUser, st: State, layer: str | None = None) -> ProjectContext:
    """The project of the URL, on the layer of ``/layers/<name>`` (its first without)."""
    users.require(user, "annotate")
    ctx = st.registry.open(slug)
    return layer_context(ctx, layer) if layer else ctx


LsProject = Annotated[ProjectContext, Depends(ls_project)]


class Open(BaseModel):
    """A Label Studio request body: the fields read are declared, any other is accepted (versions differ)."""

    model_config = ConfigDict(extra="allow")


class SetupIn(Open):
    project: str | int | None = Field(default=None, description='"<project id>.<created timestamp>"')
    schema_: str = Field(alias="schema", description="the labelling config XML")
    hostname: str | None = None
    access_token: str | None = None
    extra_params: dict[str, Any] | None = None


class PredictIn(Open):
    tasks: list[dict[str, Any]]
    project: str | int | None = None
    label_config: str | None = None
    params: dict[str, Any] | None = None


class Health(BaseModel):
    status: str = "UP"
    model_class: str = "labelloop"
    model_version: str


class SetupOut(BaseModel):
    model_version: str
    labels: list[str] = Field(description="labels both projects have")
    unknown_labels: list[str] = Field(description="labels only Label Studio's config has (added here once annotated)")
    labels_not_in_config: list[str] = Field(description="labelloop's classes Label Studio's config lacks "
                                                        "(never predicted to Label Studio)")


class PredictOut(BaseModel):
    results: list[dict[str, Any]] = Field(description="one prediction per task, in task order: result (regions "
                                                      "in percent), score, model_version")


class WebhookOut(BaseModel):
    status: str
    action: str


class Versions(BaseModel):
    versions: list[str]


class Status(BaseModel):
    model_version: str
    label_studio_project: int | None
    label_studio_url: str | None
    labels: list[str]
    last_sync: str | None
    last_error: str | None
    events: int
    images_seen: int


@_routes.get("/health", response_model=Health, summary="Label Studio checks the backend is up")
def health(ctx: LsProject) -> dict[str, Any]:
    return {"model_version": ls.model_version(ctx)}


@_routes.post("/setup", response_model=SetupOut, summary="Label Studio sends its labelling config")
def setup(ctx: LsProject, body: SetupIn) -> dict[str, Any]:
    return ls.setup(ctx, body.model_dump(by_alias=True))


@_routes.post("/predict", response_model=PredictOut, summary="Predictions for Label Studio tasks")
def predict(ctx: LsProject, body: PredictIn) -> dict[str, Any]:
    return {"results": ls.predict(ctx, body.tasks, body.label_config)}


@_routes.post("/webhook", response_model=WebhookOut, status_code=201,
             summary="Annotation events and START_TRAINING (answered at once, carried out after)")
def webhook(slug: str, ctx: LsProject, user: LsUser, st: State, background: BackgroundTasks,
            payload: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    action = str(payload.get("action") or "")

    def queue_training() -> int | None:
        return ls.queue_training(ctx, slug, st.executor, actor=user.username,
                                 project_id=ctx.id if ctx.store is st.store else None)

    background.add_task(ls.handle_event, ctx, payload, queue_training)
    return {"status": "accepted", "action": action}


@_routes.get("/versions", response_model=Versions, summary="The model versions this backend has served")
def versions(ctx: LsProject) -> dict[str, Any]:
    return {"versions": ls.versions(ctx)}


@_routes.get("/status", response_model=Status, summary="The link to Label Studio and its last sync (for people)")
def status(ctx: LsProject) -> dict[str, Any]:
    return ls.status(ctx)


router = APIRouter()
router.include_router(_routes, prefix="/ls/{slug}")
router.include_router(_routes, prefix="/ls/{slug}/layers/{layer}")
