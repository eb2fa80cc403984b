"""The progress protocol: how long work tells its caller how far it got.

Two shapes, one each:

- :data:`StageProgress` ``(stage, done, total)``: every service that walks a list of items
  (import, pre-annotation, suggestions, QA, review, doctor, pseudo-labels, simulate);
- :data:`TrainProgress`: one :data:`TrainEvent` at a time from training (``start``, ``step``,
  ``epoch``, ``predict_size``, ``end``, ``skipped``), typed below. The training service adds ``model_id``; a sweep's
  job adds ``variant``.

:class:`EpochStages` turns training events into stage progress for callers that only show a bar
(simulate, QA's folds). The CLI, the job worker and the web stream consume these shapes and no
other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, NotRequired, TypedDict, cast

__all__ = ["EndEvent", "EpochEvent", "EpochStages", "PredictSizeEvent", "SkippedEvent", "StageProgress", "StartEvent",
           "StepEvent", "TrainEvent", "TrainProgress", "tag_engine"]

#: ``progress("pre-annotate", 12, 50)``: 12 of 50 items of stage "pre-annotate" done
StageProgress = Callable[[str, int, int], None]


class StartEvent(TypedDict):
    type: Literal["start"]
    epochs: int
    steps_per_epoch: int
    start_epoch: int
    #: how the length was given, when not as epochs: "num_steps=15000 = 1500 epochs of 10 steps",
    #: "stages 4+2+2 epochs: heads only, then the top of the backbone, then everything"
    length_note: NotRequired[str]
    model_id: NotRequired[int]
    variant: NotRequired[str]
    #: where the clones run, when there are several: "Ray Train: 2 workers, 1 CPU each (gloo)"
    engine: NotRequired[str]


class StepEvent(TypedDict):
    type: Literal["step"]
    epoch: int
    step: int
    steps: int
    loss: float
    lr: float
    model_id: NotRequired[int]
    variant: NotRequired[str]


class EpochEvent(TypedDict):
    """After an evaluated epoch (every ``eval_every`` epochs and the last)."""

    type: Literal["epoch"]
    epoch: int
    losses: dict[str, float]
    metrics: dict[str, Any]
    seconds: float
    lr: float
    model_id: NotRequired[int]
    variant: NotRequired[str]


class PredictSizeEvent(TypedDict):
    """After training, one of the prediction sizes compared on the validation split
    (:mod:`labelloop.training.predict_scale`): ``done`` of ``total``."""

    type: Literal["predict_size"]
    done: int
    total: int
    size: int
    seconds_per_image: float
    model_id: NotRequired[int]
    variant: NotRequired[str]


class EndEvent(TypedDict):
    type: Literal["end"]
    reason: str  # completed, early_stopped, interrupted
    best_epoch: int
    #: the longest side the model predicts at (absent when the run was interrupted)
    predict_size: NotRequired[int]
    model_id: NotRequired[int]
    variant: NotRequired[str]


class SkippedEvent(TypedDict):
    """Images training left out because they cannot be read (before ``start``)."""

    type: Literal["skipped"]
    images: list[dict[str, Any]]
    model_id: NotRequired[int]
    variant: NotRequired[str]


TrainEvent = StartEvent | StepEvent | EpochEvent | PredictSizeEvent | EndEvent | SkippedEvent
TrainProgress = Callable[[TrainEvent], None]


class EpochStages:
    """A :data:`TrainProgress` that reports ``(stage, epoch, epochs)`` after each evaluated epoch."""

    def __init__(self, progress: StageProgress | None, stage: str, epochs: int | None = None) -> None:
        self.progress, self.stage, self.epochs = progress, stage, epochs

    def __call__(self, event: TrainEvent) -> None:
        if event["type"] == "start":
            self.epochs = int(event["epochs"])
        elif event["type"] == "epoch" and self.progress is not None:
            epoch = int(event["epoch"])
            self.progress(self.stage, epoch, self.epochs or epoch)


def tag_engine(event: Any, engine: str) -> TrainEvent:
    """A rank's event relayed to the caller: the start event names where the clones run."""
    if event.get("type") == "start":
        return cast(StartEvent, {**event, "engine": engine})
    return cast(TrainEvent, event)
