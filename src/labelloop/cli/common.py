"""Shared CLI pieces: the --project/--json options, opening the project, output and progress."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from labelloop.services.projects import load_project
from labelloop.store.project import ProjectContext

__all__ = ["JsonOpt", "LayerOpt", "ProjectOpt", "console", "emit_json", "output", "progress_bar", "project_from"]

T = TypeVar("T")

console = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

ProjectOpt = Annotated[Path | None, typer.Option("--project", "-p", help="project folder (default: here)",
                                                 show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="print machine-readable JSON")]
LayerOpt = Annotated[str | None, typer.Option("--layer", "-l", help="the project's layer to work on (default: "
                                              "its only layer; `labelloop layers list` shows them)",
                                              show_default=False)]


class _WholeProject:
    """``project_from``'s default: a command about the whole project (its images, its users), no layer."""


WHOLE_PROJECT = _WholeProject()


@contextmanager
def project_from(path: Path | None, layer: str | _WholeProject | None = WHOLE_PROJECT) -> Iterator[ProjectContext]:
    """The project in ``path``; on ``layer`` (``None``: its only layer, or an error that lists them)."""
    from labelloop.services.layers import layer_context

    ctx = load_project(path)
    try:
        yield ctx if isinstance(layer, _WholeProject) else layer_context(ctx, layer)
    finally:
        ctx.close()


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def output(data: T, json_out: bool, render: Callable[[T], None]) -> None:
    """A command's result: as JSON with ``--json`` (``as_dict()`` of a report object), else ``render(data)``
    for people (tables, bars, one-line summaries)."""
    if not json_out:
        render(data)
        return
    as_dict = getattr(data, "as_dict", None)
    emit_json(as_dict() if callable(as_dict) else data)


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """A ``(stage, done, total)`` callback drawing one rich bar per stage (on stderr)."""
    if not enabled:
        yield lambda stage, done, total: None
        return
    bars: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<12}"), BarColumn(), MofNCompleteColumn(),
                  TimeRemainingColumn(), console=console, transient=False) as progress:
        def update(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=max(total, 1))
            progress.update(bars[stage], completed=done, total=max(total, 1))

        yield update


def warn_skipped(skipped: list[Any], limit: int = 20) -> None:
    """On stderr (``--json`` output stays clean): the images a command could not read and skipped."""
    if not skipped:
        return
    console.print(f"[yellow]{len(skipped)} image(s) could not be read and were skipped[/] "
                  "(`labelloop doctor` lists missing and damaged images):")
    for s in skipped[:limit]:
        console.print(f"  image {s['image_id']} {s['file_name']}: {s['reason']}")
    if len(skipped) > limit:
        console.print(f"  ... and {len(skipped) - limit} more")
