"""Interchange records between formats and the store.

Importers produce a :class:`DatasetRecord`; exporters consume one. Records
validate themselves at construction so a bad box is reported where it was
read, with the file and record named by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = [
    "GROUND_TRUTH_STATES",
    "IMAGE_EXTENSIONS",
    "LABELLED_STATUSES",
    "MAX_CLASS_NAME",
    "UNLABELLED_STATUSES",
    "AnnotationRecord",
    "DatasetRecord",
    "ImageRecord",
    "ImageStatus",
    "Proposal",
    "RegionRecord",
    "ReviewState",
    "clean_class_name",
]


class ReviewState(StrEnum):
    """Where a model's proposal stands in review (a human annotation has none: ``None``)."""

    PROPOSED = "proposed"
    ACCEPTED = "accepted"
    EDITED = "edited"  # accepted after a fix
    REJECTED = "rejected"


#: review states that count as ground truth, beside ``None`` (drawn by a person)
GROUND_TRUTH_STATES: tuple[str, ...] = (ReviewState.ACCEPTED, ReviewState.EDITED)


class ImageStatus(StrEnum):
    NEW = "new"
    PRE_ANNOTATED = "pre-annotated"
    ANNOTATED = "annotated"
    REVIEWED = "reviewed"


_REVIEW_STATES = frozenset(ReviewState)

#: images whose annotations are ground truth (training, evaluation, QA)
LABELLED_STATUSES: tuple[str, ...] = (ImageStatus.ANNOTATED, ImageStatus.REVIEWED)
#: images waiting for a person (pre-annotation and suggestions pick from these)
UNLABELLED_STATUSES: tuple[str, ...] = (ImageStatus.NEW, ImageStatus.PRE_ANNOTATED)

#: file name suffixes of the images labelloop imports and looks for
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif"})


def _finite(values: tuple[float, ...] | list[float]) -> bool:
    try:
        return all(math.isfinite(v) for v in values) and not any(isinstance(v, bool) for v in values)
    except TypeError:
        return False


@dataclass(slots=True)
class AnnotationRecord:
    """One object on one image.

    Attributes:
        label: class name.
        bbox: ``(x1, y1, x2, y2)`` in pixels; for polygons/masks, their bounding box.
        polygons: list of flat rings ``[x0, y0, x1, y1, ...]`` in pixels, or None.
        rle: COCO RLE ``{"size": [h, w], "counts": str}`` (compressed), or None.
        iscrowd: COCO's crowd flag.
        score: confidence of a model proposal, None for human annotations.
        source: ``"human"`` or a model version string (``"model:12"``).
        review_state: ``proposed`` | ``accepted`` | ``edited`` | ``rejected`` | None (human).
        attributes: free key/values a format carried (occluded, truncated, ...).
    """

    label: str
    bbox: tuple[float, float, float, float]
    polygons: list[list[float]] | None = None
    rle: dict[str, Any] | None = None
    iscrowd: bool = False
    score: float | None = None
    source: str = "human"
    review_state: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.label, str) or not self.label.strip():
            raise ValueError(f"expected a non-empty class name, got {self.label!r}")
        try:
            x1, y1, x2, y2 = (float(v) for v in self.bbox)
        except (TypeError, ValueError):
            raise ValueError(f"expected a box of 4 numbers (x1, y1, x2, y2), got {self.bbox!r}") from None
        if not (math.isfinite(x1) and math.isfinite(y1) and math.isfinite(x2) and math.isfinite(y2)):
            raise ValueError(f"expected a box of 4 finite numbers (x1, y1, x2, y2), got {self.bbox!r}")
        if x2 <= x1 or y2 <= y1:
            raise ValueError(f"box has zero or negative area: {self.bbox!r} (expected x2 > x1 and y2 > y1)")
        self.bbox = (x1, y1, x2, y2)
        if self.review_state is not None and self.review_state not in _REVIEW_STATES:
            raise ValueError(f"unknown review state {self.review_state!r} (expected one of "
                             f"{', '.join(sorted(_REVIEW_STATES))}, or none for a person's annotation)")
        if self.polygons is not None:
            for ring in self.polygons:
                if len(ring) < 6 or len(ring) % 2 or not _finite(ring):
                    raise ValueError(
                        f"expected a polygon of >= 3 points as flat [x0, y0, x1, y1, ...], got {len(ring)} "
                        "numbers"
                    )
        if self.score is not None and not (0.0 <= float(self.score) <= 1.0):
            raise ValueError(f"expected a score in [0, 1], got {self.score!r}")

    @property
    def kind(self) -> str:
        """``mask``, ``polygon`` or ``box``: the richest shape this record carries."""
        if self.rle is not None:
            return "mask"
        if self.polygons:
            return "polygon"
        return "box"


#: a class name is a label, not a document
MAX_CLASS_NAME = 200
_CONTROL_NAMES = {"\n": "a line break", "\r": "a carriage return", "\t": "a tab", "\x00": "NUL",
                  "\x1b": "ESCAPE, as in terminal colour codes"}


def clean_class_name(raw: object) -> str:
    """``raw`` stripped, if it can be a class name: text of 1-200 characters without control or
    invisible formatting characters (a newline shifts the class indices of YOLO's ``obj.names``, an
    ANSI escape reaches the terminal, a right-to-left override disguises the name); else an
    :class:`~labelloop.errors.InvalidInputError` that says which character."""
    import unicodedata

    from labelloop.errors import InvalidInputError

    name = str(raw).strip()
    if not name:
        raise InvalidInputError("empty class name", "give names like: car,person")
    if len(name) > MAX_CLASS_NAME:
        raise InvalidInputError(f"class name {name[:40]!r}... has {len(name)} characters, over the limit of "
                                f"{MAX_CLASS_NAME}", "use a short name; put descriptions elsewhere")
    bad = next((ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        what = _CONTROL_NAMES.get(bad) or unicodedata.name(bad, "a control character")
        raise InvalidInputError(f"class name {name[:60]!r} holds the control character U+{ord(bad):04X} ({what})",
                                "class names are plain text on one line: remove it")
    return name


@dataclass(frozen=True, slots=True)
class Proposal:
    """One model proposal about to be stored: the project's class id, the box clipped to the image
    (``x1, y1, x2, y2`` pixels), the model's score and its mask (COCO RLE) when it has one."""

    class_id: int
    bbox: tuple[float, float, float, float]
    score: float
    rle: dict[str, Any] | None = None


@dataclass(slots=True)
class RegionRecord:
    """A training region: inside it, the annotation of the image is complete."""

    polygon: list[float]  # flat ring in pixels; a rectangle is 4 points


@dataclass(slots=True)
class ImageRecord:
    """One image and its annotations as a format describes it.

    ``file_name`` is the name relative to the dataset's image root (forward slashes);
    ``path`` is where the pixels are on disk, if known.
    """

    file_name: str
    width: int | None = None
    height: int | None = None
    path: Path | None = None
    split: str | None = None
    annotations: list[AnnotationRecord] = field(default_factory=list)
    regions: list[RegionRecord] = field(default_factory=list)
    status: str | None = None


@dataclass(slots=True)
class DatasetRecord:
    """A whole dataset: class names in order and the images."""

    labels: list[str]
    images: list[ImageRecord]
    task: str | None = None
    skipped: list[str] = field(default_factory=list)  # "file [record]: reason" lines under --skip-invalid

    def ensure_labels(self) -> None:
        """Append any class used by an annotation but missing from ``labels``, in order of appearance."""
        known = set(self.labels)
        for image in self.images:
            for ann in image.annotations:
                if ann.label not in known:
                    known.add(ann.label)
                    self.labels.append(ann.label)
