"""Request bodies. Responses are the services' JSON-ready dicts."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "AcceptAllIn",
    "AnnotationIn",
    "AnnotationUpdateIn",
    "ClassesIn",
    "JobIn",
    "LoginIn",
    "MergeIn",
    "ProjectIn",
    "RegionsIn",
    "RenameIn",
    "ReviewIn",
    "SplitIn",
    "TokenIn",
    "UserIn",
    "UserUpdateIn",
]

Role = Literal["admin", "annotator", "reviewer"]


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class TokenIn(BaseModel):
    name: str = Field(min_length=1, max_length=150, description="what the token is for, e.g. the script's name")


class UserIn(BaseModel):
    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=8, max_length=1000)
    role: Role = "annotator"


class UserUpdateIn(BaseModel):
    password: str | None = Field(default=None, min_length=8, max_length=1000)
    role: Role | None = None


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    task: Literal["detect", "segment", "regions"] = "detect"
    labels: list[str] = Field(default_factory=list, max_length=500)
    slug: str | None = Field(default=None, max_length=63, description="folder name (default: from the name)")


class LayerIn(BaseModel):
    name: str = Field(min_length=1, max_length=60)
    kind: Literal["detect", "segment", "regions"]
    parent: str | None = Field(default=None, max_length=60, description="the layer whose regions it lives in")
    labels: list[str] = Field(default_factory=list, max_length=500)


class LayerRenameIn(BaseModel):
    name: str = Field(min_length=1, max_length=60, description="the layer's new name")


class ClassesIn(BaseModel):
    names: list[str] = Field(min_length=1, max_length=500)


class RenameIn(BaseModel):
    old: str
    new: str = Field(min_length=1, max_length=200)


class MergeIn(BaseModel):
    sources: list[str] = Field(min_length=1)
    target: str


class SplitIn(BaseModel):
    val: float = Field(default=0.2, ge=0.0, lt=1.0)
    test: float = Field(default=0.0, ge=0.0, lt=1.0)
    seed: int = 0


class AnnotationIn(BaseModel):
    label: str = Field(min_length=1, max_length=200)
    bbox: tuple[float, float, float, float] | None = Field(default=None, description="x1, y1, x2, y2 in pixels")
    polygons: list[list[float]] | None = Field(default=None, description="flat rings [x0, y0, x1, y1, ...]")
    rle: dict[str, Any] | None = Field(default=None, description="a COCO RLE mask {size: [h, w], counts}")
    attributes: dict[str, Any] | None = None
    outline: bool = Field(default=False, description="with an rle and no polygons: store the mask's outline as "
                                                     "polygons too (a painted region: what the canvas shows)")


class AnnotationUpdateIn(AnnotationIn):
    """An edit changes only what it gives: the label alone (no bbox, polygons or rle) relabels and keeps the
    shape; a new bbox alone moves the rings and mask with it; new polygons or a new rle replace the shape."""

    version: int = Field(description="the version you loaded; a stale one answers 409 and changes nothing")


class ClickIn(BaseModel):
    x: float = Field(description="the click, in image pixels")
    y: float
    label: str | None = Field(default=None, min_length=1, max_length=200,
                              description="the active class; omitted: the model's class")
    model_id: int | None = Field(default=None, ge=1, description="default: the newest ready model")


class ReviewIn(BaseModel):
    action: Literal["accept", "reject"]
    version: int | None = None


class AcceptAllIn(BaseModel):
    min_score: float | None = Field(default=None, ge=0.0, le=1.0)


class RegionsIn(BaseModel):
    polygons: list[list[float]] = Field(description="flat rings; empty = the whole image is annotated")


class JobIn(BaseModel):
    kind: str = Field(description="train, sweep, preannotate, suggest, qa (GET /api/jobs/kinds)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="train: base, args ('epochs=30;batch_size=8'), from_model, "
                                               "resume; preannotate: model_id, images, threshold; "
                                               "suggest: n, strategy; "
                                               "sweep: grid ('lr=0.01,0.003;epochs=10,30', every combination) or "
                                               "variants (['lr=0.01', 'lr=0.001'], one each), with base and args "
                                               "shared by all")
