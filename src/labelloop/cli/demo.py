"""`labelloop demo`: a ready demo project from generated images (nothing downloaded)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from labelloop.cli.common import JsonOpt, out, output, progress_bar
from labelloop.cli.project import stats
from labelloop.services.demo import create_demo_project

__all__ = ["register"]


def demo(
    directory: Annotated[Path, typer.Argument(help="folder for the demo project")] = Path("demo"),
    images: Annotated[int, typer.Option(help="how many images to generate")] = 60,
    labelled: Annotated[int, typer.Option(help="how many of them come annotated")] = 24,
    task: Annotated[str, typer.Option(help="detect | segment")] = "detect",
    json_out: JsonOpt = False,
) -> None:
    """Create a demo project of generated shapes, import it and show its stats."""
    with progress_bar(not json_out) as progress:
        ctx, result = create_demo_project(directory, n_images=images, labelled=labelled, task=task,
                                          progress=progress)
    ctx.close()
    output({"root": str(ctx.root), **result}, json_out, _print_demo)


def _print_demo(result: dict[str, Any]) -> None:
    out.print(f"demo project in {result['root']}: {result['import']['images_added']} images imported")
    stats(project=Path(result["root"]), json_out=False)


def register(app: typer.Typer) -> None:
    app.command()(demo)
