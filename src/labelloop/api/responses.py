"""Response bodies: what every JSON route answers, so the OpenAPI document (and the web app's
TypeScript types generated from it, ``web/src/schema.d.ts``) describe what comes back.

The services build these shapes as JSON-ready dicts; a route declares its model with
``response_model`` and FastAPI validates and filters the dict against it. A field a service adds
without declaring it here would be dropped silently, so with ``LABELLOOP_STRICT_RESPONSES=1`` (the
test suite's servers) an undeclared field is an error instead: the contract and the code cannot
drift apart unnoticed.
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "ERRORS",
    "STRICT_ENV",
    "AcceptedCount",
    "Annotation",
    "AuthUser",
    "BaseModelInfo",
    "ClassInfo",
    "Effort",
    "EffortRound",
    "ErrorBody",
    "ExecutorInfo",
    "Flipbook",
    "FormatInfo",
    "Health",
    "ImageDetail",
    "ImagePage",
    "ImportReport",
    "Job",
    "JobKind",
    "LabelIssue",
    "LatestIssues",
    "LatestSuggestions",
    "Lineage",
    "MergeResult",
    "ModelComparison",
    "ModelDetail",
    "ModelEpoch",
    "ModelRecord",
    "Ok",
    "Overview",
    "ProjectSummary",
    "ReviewQueue",
    "SplitResult",
    "Stats",
    "Suggestion",
    "TokenCreated",
    "TokenInfo",
    "UploadReport",
    "UserInfo",
    "UserRecord",
    "WarmCandidates",
]

#: set to 1 to refuse (HTTP 500 with the field named in the log) a response with an undeclared field
STRICT_ENV = "LABELLOOP_STRICT_RESPONSES"


def _strict() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0", "false", "no")


class Out(BaseModel):
    """A response body. Undeclared keys are dropped, or refused under :data:`STRICT_ENV`."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _declared_only(cls, data: Any) -> Any:
        if isinstance(data, dict) and _strict():
            extra = sorted(set(data) - set(cls.model_fields))
            if extra:
                raise ValueError(f"{cls.__name__} does not declare {', '.join(map(str, extra))}")
        return data


class ErrorBody(Out):
    """Every refused request (4xx) and server failure (5xx) answers this."""

    error: str = Field(description="the kind, e.g. InvalidInputError, NotFoundError, ConflictError")
    message: str = Field(description="what was wrong")
    hint: str | None = Field(description="how to fix it")


#: the error answers of every route, for the OpenAPI document
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "refused: the body says what was expected and how to fix it"},
    "5XX": {"model": ErrorBody, "description": "the server failed (its log has the details)"},
}


# ---- small answers ----------------------------------------------------------------------------

class Ok(Out):
    ok: bool = True


class LayerDeleted(Out):
    layer: str
    annotations: int = Field(description="the layer's annotations deleted with it")
    models: int = Field(description="the layer's models deleted with it")


class AcceptedCount(Out):
    accepted: int = Field(description="proposals accepted")


class Health(Out):
    status: str
    version: str


# ---- users and sessions -----------------------------------------------------------------------

class UserInfo(Out):
    id: int
    username: str
    role: str
    permissions: list[str] = Field(description="the actions this user's role may do")


class AuthUser(Out):
    user: UserInfo


class UserRecord(Out):
    id: int
    username: str
    role: str
    created_at: str


class TokenInfo(Out):
    id: int
    name: str
    username: str
    created_at: str
    last_used_at: str | None


class TokenCreated(Out):
    id: int
    name: str
    username: str
    token: str = Field(description="shown once: send it as 'Authorization: Bearer <token>'")


# ---- projects, classes, statistics ------------------------------------------------------------

class ProjectSummary(Out):
    slug: str
    name: str
    task: str | None = None
    uid: str | None = None
    root: str | None = Field(default=None, description="the project's folder on the server (administrators)")
    external: bool | None = None
    images: int | None = None
    proposals: int | None = None
    models: int | None = None
    created_at: str | None = None
    error: str | None = Field(default=None, description="why the project cannot be opened (then only slug and name)")


class ClassInfo(Out):
    id: int
    name: str
    color: str
    position: int
    annotations: int


class LayerClass(Out):
    name: str
    count: int = Field(description="ground-truth objects of the class in this layer")
    target: int = Field(description="objects per class a first training round wants")


class Layer(Out):
    id: int
    name: str
    kind: str = Field(description="regions | detect | segment")
    parent: str | None = Field(description="the layer whose regions this layer's objects live in")
    position: int
    images: int
    labelled_images: int
    classes: list[LayerClass]
    current: bool = Field(description="the layer this request was made on")


class ParentShape(Out):
    id: int
    label: str
    color: str
    polygons: list[list[float]]


class ParentRegion(Out):
    layer: str | None = Field(description="the parent layer (none: this layer has no parent)")
    labelled: bool = Field(description="whether the parent layer has labelled this image yet")
    regions: list[ParentShape]


class RegionCount(Out):
    image: str
    region_id: int = Field(description="the parent layer's annotation that is the region")
    region_class: str
    area_px: int
    counts: dict[str, int] = Field(description="this layer's objects inside the region, per class")
    proposed: dict[str, int] = Field(description="open proposals inside the region, per class")
    total: int


class MergeResult(Out):
    moved: int = Field(description="annotations moved to the target class")
    classes: list[ClassInfo]


class SplitResult(Out):
    assigned: dict[str, int] = Field(description="images placed in each split by this call")
    totals: dict[str, int]
    labelled_images: int


class ImageCounts(Out):
    total: int
    by_status: dict[str, int]
    by_split: dict[str, int]
    damaged: int


class AnnotationCounts(Out):
    total: int
    proposals: int


class ClassStats(Out):
    name: str
    color: str
    annotations: int
    proposals: int
    target: int
    missing: int


class Stats(Out):
    project: str
    layer: str = Field(description="the layer these figures are of")
    task: str
    images: ImageCounts
    annotations: AnnotationCounts
    classes: list[ClassStats]
    target_per_class: int
    ready_to_train: bool


class CurrentModel(Out):
    id: int
    name: str
    base: str
    round: int
    status: str
    metric: str | None
    value: float | None
    created_at: str | None
    finished_at: str | None


class NextStep(Out):
    action: str = Field(description="upload, review, annotate, train, preannotate, next, or parent (label the "
                                    "parent layer's regions first)")
    text: str
    label: str | None = None
    layer: str | None = Field(default=None, description="with parent: the layer to work on")
    count: int | None = None
    round: int | None = None


class Overview(Out):
    stats: Stats
    model: CurrentModel | None
    new_annotations_since_model: int
    next: list[NextStep]


# ---- images and annotations -------------------------------------------------------------------

class Image(Out):
    id: int
    file_name: str
    width: int
    height: int
    status: str
    split: str | None
    sha256: str
    damaged: str | None = Field(description="why the file is only partly there (truncated, missing, changed)")
    created_at: str | None


class ImageItem(Image):
    annotations: int
    proposals: int


class ImagePage(Out):
    items: list[ImageItem]
    next_after: int | None = Field(description="pass as after for the next page (None at the end)")
    prev_before: int | None
    total: int | None = Field(description="counted only with total=true")


class UploadReport(Out):
    added: list[Image]
    duplicates: list[str]
    errors: list[str]
    error: str | None = None
    message: str | None = None
    hint: str | None = None


class ImageWithRegions(Image):
    regions: list[list[float]] = Field(description="training regions as flat rings; empty = the whole image")


class Annotation(Out):
    id: int
    image_id: int
    class_id: int
    label: str
    bbox: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 in pixels")
    polygons: list[list[float]] | None
    rle: dict[str, Any] | None = Field(description="a COCO RLE mask {size: [h, w], counts}")
    iscrowd: bool
    source: str = Field(description="human, or model:<id> for a proposal")
    model_id: int | None
    score: float | None
    review_state: str | None = Field(description="proposed, accepted, rejected, or None for a human's own")
    author: str
    version: int
    attributes: dict[str, Any]
    created_at: str | None
    updated_at: str | None


class Neighbours(Out):
    previous: int | None
    next: int | None


class ImageDetail(ImageWithRegions):
    annotations: list[Annotation]
    neighbours: Neighbours


class QueueItem(Out):
    image_id: int
    file_name: str
    proposals: int
    min_score: float | None
    max_score: float | None
    mean_score: float | None


class ReviewQueue(Out):
    items: list[QueueItem]
    images: int
    proposals: int


class WarmCandidates(Out):
    model_id: int
    candidates: int


# ---- jobs ---------------------------------------------------------------------------------------

class JobKind(Out):
    name: str
    title: str
    permission: str


class Job(Out):
    id: int
    kind: str
    project: str | None
    params: dict[str, Any]
    status: str = Field(description="queued, running, succeeded, failed or cancelled")
    progress: float
    message: str
    error: str | None
    cancel_requested: bool
    created_by: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    output: dict[str, Any] | None = Field(description="what the job produced (its kind's own shape)")
    event_count: int
    events: list[dict[str, Any]] | None = Field(default=None, description="with events=true")


class Suggestion(Out):
    """An image worth annotating next. Fields after ``image_id`` default, so outputs stored by
    earlier versions still read."""

    image_id: int
    file_name: str = ""
    score: float = 0.0
    reasons: list[str] = Field(default_factory=list)
    components: dict[str, float] = Field(default_factory=dict)
    rank: int | None = None
    strategy: str | None = None
    model_id: int | None = None
    model_round: int | None = None


class LabelIssue(Out):
    """A likely label error (missing box, wrong class, loose box, duplicate...)."""

    kind: str
    score: float = 0.0
    message: str = ""
    image_id: int | None = None
    file_name: str | None = None
    annotation_id: int | None = Field(default=None, description="the suspicious label; None for a missing box")
    label: str | None = None
    predicted_label: str | None = None
    bbox: list[float] | None = None
    iou: float | None = None


class _Latest(Out):
    job: Job | None = Field(description="the job that produced these findings")
    pending: Job | None = Field(description="a newer job still queued or running")
    last: Job | None = Field(description="the newest job of this kind, whatever its state")
    note: str | None


class LatestSuggestions(_Latest):
    suggestions: list[Suggestion]


class LatestIssues(_Latest):
    issues: list[LabelIssue]


class EffortRound(Out):
    round: int
    model_id: int | None
    map50: float | None
    images: int
    new_images: int
    objects: int
    actions: dict[str, int]
    seconds_by_action: dict[str, float]
    seconds_loop: float
    seconds_scratch: float
    seconds_perfect: float = Field(description="inspect and accept every object: the best a model can do")
    ratio: float | None = Field(description="loop / from scratch")
    share_of_saving: float | None = Field(description="(scratch - loop) / (scratch - perfect)")


class EffortTotal(Out):
    seconds_loop: float
    seconds_scratch: float
    ratio: float | None
    ratio_after_round0: float | None = Field(description="the rounds a model pre-annotated (None before)")
    seconds_perfect_after_round0: float
    share_of_saving_after_round0: float | None


class Effort(Out):
    costs: dict[str, float] = Field(description="seconds per action of the cost model")
    rounds: list[EffortRound]
    total: EffortTotal


class ExecutorInfo(Out):
    """Where jobs run, and what one training may ask for."""

    name: str = Field(description="local worker or Ray cluster")
    resources: dict[str, float] = Field(description="CPU, GPU and a cluster's custom resources")
    max_clones: int = Field(description="the most parallel copies (num_clones) one training can have here")


# ---- models -----------------------------------------------------------------------------------

class BaseModelInfo(Out):
    name: str
    task: str
    summary: str
    guidance: str
    default: bool
    input_size: int
    mean: list[float]
    std: list[float]
    weights_package: str | None


class ModelRecord(Out):
    id: int
    name: str
    base: str
    task: str
    args: dict[str, Any]
    parent_id: int | None
    round: int
    status: str
    classes: list[str]
    metrics: dict[str, Any]
    best_epoch: int | None
    directory: str
    sweep: str | None
    error: str | None
    snapshot: dict[str, Any]
    created_at: str | None
    finished_at: str | None


class ModelEpoch(Out):
    epoch: int
    losses: dict[str, Any]
    metrics: dict[str, Any]
    seconds: float


class LineageStep(Out):
    id: int
    name: str
    round: int
    base: str
    map50: float | None
    train_images: int | None


class PredictSizeTried(Out):
    size: int = Field(description="longest image side at the model input, pixels")
    scale: float = Field(description="that size over the training size")
    seconds_per_image: float = Field(description="expected review seconds per validation image at it")


class Prediction(Out):
    predict_size: int = Field(description="the longest side the model predicts at")
    input_size: int = Field(description="the longest side it trained at")
    compared: list[PredictSizeTried] = Field(description="the sizes its training compared on the validation split "
                                                         "(empty: the size was given with predict_scale=N, or "
                                                         "nothing was compared: an interrupted run, a regions "
                                                         "model, no validation images)")


class ModelDetail(ModelRecord):
    epochs: list[ModelEpoch]
    lineage: list[LineageStep] = Field(description="the model's ancestors and itself, oldest first")
    plots: list[str]
    prediction: Prediction | None = Field(None, description="the size the model predicts at (None: no finished "
                                                            "model folder)")


class Lineage(Out):
    ancestors: list[ModelRecord]
    model: ModelRecord
    children: list[ModelRecord]


class ModelComparison(Out):
    models: list[ModelRecord]
    per_class_ap: dict[str, list[float | None]] = Field(description="per class, one AP per model in order")


class FlipBox(Out):
    label: str
    bbox: list[float]


class FlipPrediction(FlipBox):
    score: float


class FlipImage(Out):
    image_id: int
    file_name: str
    width: int
    height: int
    ground_truth: list[FlipBox]


class FlipEpoch(Out):
    epoch: int
    predictions: dict[int, list[FlipPrediction]] = Field(description="by image id")


class Flipbook(Out):
    model_id: int
    classes: list[str]
    images: list[FlipImage]
    epochs: list[FlipEpoch]


# ---- import and formats -----------------------------------------------------------------------

class FormatInfo(Out):
    name: str
    description: str
    can_write: bool
    holds: list[str]


class ImportReport(Out):
    format: str
    images_added: int
    images_matched: int
    annotations_added: int
    labels_added: list[str]
    skipped: list[str]
    damaged: list[dict[str, str]]
