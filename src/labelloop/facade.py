"""The Python API: ``import labelloop as ll`` for notebooks and scripts.

A small facade over the services the CLI calls, with the same defaults and the same domain errors
(:class:`labelloop.errors.LabelloopError` and its kinds, each with a fix-it ``hint``)::

    import labelloop as ll

    p = ll.init("cells", task="detect", labels=["cell", "debris"])
    p.import_("annotations.json")            # COCO, YOLO, VOC, CVAT, Label Studio, ...
    model = p.train(args="epochs=20")        # a Model: .map50, .metrics, .flipbook("f.gif")
    p.preannotate(model)                     # proposals on the unlabelled images
    p.review(accept_above=0.9)               # or review them in the web app
    p.suggest(n=50)                          # what to annotate next, and why
    p.export("out", format="yolo")

Long calls show a progress bar (rich; in a notebook too); ``progress=False`` hides it and a callable
``progress(stage, done, total)`` receives the updates instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from labelloop.core.progress import EpochStages, StageProgress, TrainProgress
from labelloop.services.projects import load_project, new_project
from labelloop.store.project import ProjectContext

__all__ = ["Model", "Project", "init", "open"]

#: ``"auto"`` (a bar), ``False`` (nothing) or a ``(stage, done, total)`` callable
Progress: TypeAlias = bool | str | StageProgress


@contextmanager
def _stages(progress: Progress) -> Iterator[StageProgress | None]:
    if callable(progress):
        yield progress
    elif progress:
        from labelloop.cli.common import progress_bar

        with progress_bar(True) as bar:
            yield bar
    else:
        yield None


@contextmanager
def _training(progress: Progress) -> Iterator[TrainProgress | None]:
    if callable(progress):
        yield EpochStages(progress, "train")
    elif progress:
        from labelloop.cli.train import training_display

        with training_display(True) as show:
            yield show
    else:
        yield None


@dataclass
class Model:
    """A trained model of a project (a snapshot of its record; :meth:`Project.model` re-reads it)."""

    project: Project = field(repr=False)
    id: int
    name: str
    base: str
    round: int
    status: str
    metrics: dict[str, Any]
    parent_id: int | None
    directory: Path
    record: dict[str, Any] = field(repr=False)

    @classmethod
    def _from(cls, project: Project, record: dict[str, Any]) -> Model:
        return cls(project, record["id"], record["name"], record["base"], record["round"], record["status"],
                   dict(record.get("metrics") or {}), record.get("parent_id"),
                   project.root / record["directory"], record)

    @property
    def map50(self) -> float | None:
        """Validation mAP@.5 (mIoU for a regions model) of the best epoch."""
        value = self.metrics.get("map50", self.metrics.get("miou"))
        return float(value) if value is not None else None

    def epochs(self) -> list[dict[str, Any]]:
        """Per-epoch losses and metrics, as trained."""
        from labelloop.services.models import model_epochs

        return model_epochs(self.project.ctx, self.id)

    def flipbook(self, out: str | Path = "flipbook.gif") -> Path:
        """Predictions on the same validation images epoch after epoch, as a ``.gif`` or ``.html``."""
        from labelloop.services.models import render_model_flipbook

        return render_model_flipbook(self.project.ctx, self.id, Path(out))

    def export(self, out: str | Path, format: str = "onnx") -> Path:
        """The model as ``onnx`` (a file) or ``cvat-function`` (a folder for CVAT's auto-annotation)."""
        from labelloop.services.models import export_model

        return Path(export_model(self.project.ctx, self.id, format=format, out=Path(out)))


class Project:
    """A labelloop project folder, open. Use it as a context manager, or call :meth:`close`."""

    def __init__(self, ctx: ProjectContext, *, owns_store: bool = True) -> None:
        self.ctx = ctx
        self._owns_store = owns_store

    def __repr__(self) -> str:
        return (f"Project({self.ctx.name!r}, layer={self.ctx.layer!r}, task={self.ctx.task!r}, "
                f"root={str(self.ctx.root)!r})")

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_store:  # a layer's Project shares its project's database connection
            self.ctx.close()

    @property
    def root(self) -> Path:
        return self.ctx.root

    @property
    def task(self) -> str:
        return self.ctx.task

    # ------------------------------------------------------------------ layers
    def layers(self) -> list[dict[str, Any]]:
        """The project's layers (regions, and the objects inside them), with their classes' progress."""
        from labelloop.services.layers import list_layers

        return list_layers(self.ctx)

    def layer(self, name: str) -> Project:
        """The same project, working on layer ``name``: its classes, annotations, training and models."""
        from labelloop.services.layers import layer_context

        return Project(layer_context(self.ctx, name), owns_store=False)

    def add_layer(self, name: str, kind: str, *, parent: str | None = None,
                  labels: list[str] | None = None) -> Project:
        """A new layer (``regions``, ``detect`` or ``segment``; ``parent``: the layer whose regions it lives
        in), working on it."""
        from labelloop.services.layers import add_layer

        add_layer(self.ctx, name, kind, parent=parent, labels=labels)
        return self.layer(name)

    # ------------------------------------------------------------------ data

    def import_(self, source: str | Path, *, format: str | None = None, link: bool = False,
                skip_invalid: bool = False, allow_missing_images: bool = False,
                progress: Progress = "auto") -> dict[str, Any]:
        """Import a dataset (format detected, or ``format``); the report as ``labelloop import --json``."""
        from labelloop.services.importing import import_path

        with _stages(progress) as bar:
            report = import_path(self.ctx, Path(source), format=format, link=link, skip_invalid=skip_invalid,
                                 allow_missing_images=allow_missing_images, progress=bar)
        return report.as_dict()

    def split(self, *, val: float = 0.2, test: float = 0.0, seed: int = 0) -> dict[str, Any]:
        """Assign the labelled images to train/val (stratified, stable as images are added)."""
        from labelloop.services.splitting import assign_splits

        return assign_splits(self.ctx, val=val, test=test, seed=seed)

    def stats(self) -> dict[str, Any]:
        """Images by status and split; annotations per class against the first-round target."""
        from labelloop.services.stats import project_stats

        return project_stats(self.ctx)

    def export(self, out: str | Path, *, format: str = "coco", split: str | None = None,
               include_proposals: bool = False, images: str = "copy") -> dict[str, Any]:
        """Write the project in ``format`` into folder ``out``; the report as ``labelloop export --json``."""
        from labelloop.services.exporting import export_project

        return export_project(self.ctx, Path(out), format=format, split=split, include_proposals=include_proposals,
                              images=images).as_dict()

    # ------------------------------------------------------------------ models

    def train(self, *, base: str | None = None, args: str = "", from_model: Model | int | None = None,
              resume: bool = False, progress: Progress = "auto") -> Model:
        """Train on the labelled images (split 80/20 first if needed); ``from_model`` fine-tunes it.
        ``args`` as the CLI's: ``"epochs=30;batch_size=8;lr=0.004"``."""
        from labelloop.services.training import train_project

        parent = from_model.id if isinstance(from_model, Model) else from_model
        with _training(progress) as show:
            record = train_project(self.ctx, base=base, args=args, from_model=parent, resume=resume, progress=show)
        return Model._from(self, record)

    def models(self) -> list[Model]:
        from labelloop.services.models import list_models

        return [Model._from(self, r) for r in list_models(self.ctx)]

    def model(self, model_id: int) -> Model:
        from labelloop.services.models import get_model

        return Model._from(self, get_model(self.ctx, model_id))

    # ------------------------------------------------------------------ the loop

    def preannotate(self, model: Model | int | None = None, *, images: str = "unlabeled",
                    threshold: str | float = "auto", progress: Progress = "auto") -> dict[str, Any]:
        """Proposals on ``images`` (default: the unlabelled ones) by ``model`` (default: the newest)."""
        from labelloop.services.preannotate import preannotate

        with _stages(progress) as bar:
            return preannotate(self.ctx, model_id=_id(model), images=images, threshold=threshold, progress=bar)

    def review(self, *, accept_above: float | None = None, reject_below: float | None = None,
               reviewer: str | None = None, progress: Progress = "auto") -> dict[str, Any]:
        """Accept proposals scoring >= ``accept_above``, reject those < ``reject_below``."""
        from labelloop.services.review import review_proposals

        with _stages(progress) as bar:
            return review_proposals(self.ctx, accept_above=accept_above, reject_below=reject_below,
                                    reviewer=reviewer, progress=bar)

    def suggest(self, n: int = 50, *, model: Model | int | None = None, strategy: str | None = None,
                progress: Progress = "auto") -> list[dict[str, Any]]:
        """The ``n`` unlabelled images worth annotating next, best first, each with its reasons."""
        from labelloop.services.suggest import DEFAULT_STRATEGY, suggest_images

        with _stages(progress) as bar:
            return suggest_images(self.ctx, n=n, model_id=_id(model), strategy=strategy or DEFAULT_STRATEGY,
                                  progress=bar)

    def qa(self, *, model: Model | int | None = None, folds: int = 0, args: str = "",
           progress: Progress = "auto") -> list[dict[str, Any]]:
        """Labels that look wrong, most likely first (``folds >= 2``: out-of-fold models check every label)."""
        from labelloop.services.qa import find_label_issues

        with _stages(progress) as bar:
            return find_label_issues(self.ctx, model_id=_id(model), folds=folds, args=args, progress=bar)

    def effort(self) -> dict[str, Any]:
        """Human effort per round: actions, time with the loop and from scratch, model mAP."""
        from labelloop.services.effort import effort_report

        return effort_report(self.ctx)


def _id(model: Model | int | None) -> int | None:
    return model.id if isinstance(model, Model) else model


def init(directory: str | Path, *, task: str = "detect", labels: list[str] | None = None,
         name: str | None = None) -> Project:
    """A new project in ``directory`` (``task``: detect, segment or regions)."""
    return Project(new_project(Path(directory), task=task, name=name, labels=list(labels or [])))


def open(directory: str | Path = ".") -> Project:  # shadows the builtin here only: ll.open("dir")
    """The project in ``directory`` or a parent folder."""
    return Project(load_project(Path(directory)))
