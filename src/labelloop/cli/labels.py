"""`labelloop labels list|add|rename|merge`."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from labelloop.cli.common import JsonOpt, LayerOpt, ProjectOpt, out, output, project_from
from labelloop.services.labels import add_labels, list_labels, merge_labels, rename_label

__all__ = ["register"]

app = typer.Typer(help="Label classes: list, add, rename, merge.", no_args_is_help=True)


@app.command("list")
def list_(project: ProjectOpt = None, layer: LayerOpt = None, json_out: JsonOpt = False) -> None:
    """List the classes with their annotation counts."""
    with project_from(project, layer) as ctx:
        rows = list_labels(ctx)
    output(rows, json_out, _print_labels)


def _print_labels(rows: list[dict[str, Any]]) -> None:
    table = Table("#", "class", "colour", "annotations")
    for r in rows:
        table.add_row(str(r["position"] + 1), r["name"], f"[{r['color']}]■[/] {r['color']}", str(r["annotations"]))
    out.print(table)


@app.command()
def add(names: Annotated[str, typer.Argument(help="comma-separated names")],
        project: ProjectOpt = None, layer: LayerOpt = None) -> None:
    """Add classes."""
    with project_from(project, layer) as ctx:
        added = add_labels(ctx, names.split(","), actor="cli")
    out.print(f"added {', '.join(added)}")


@app.command()
def rename(old: str, new: str,
        project: ProjectOpt = None, layer: LayerOpt = None) -> None:
    """Rename class OLD to NEW (annotations follow)."""
    with project_from(project, layer) as ctx:
        rename_label(ctx, old, new, actor="cli")
    out.print(f"renamed {old} to {new}")


@app.command()
def merge(sources: Annotated[str, typer.Argument(help="comma-separated classes to merge")],
          target: Annotated[str, typer.Argument(help="class that receives their annotations")],
          project: ProjectOpt = None, layer: LayerOpt = None) -> None:
    """Merge SOURCES into TARGET (history keeps the merged classes)."""
    with project_from(project, layer) as ctx:
        moved = merge_labels(ctx, [s for s in sources.split(",") if s.strip()], target, actor="cli")
    out.print(f"moved {moved} annotations into {target}")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="labels")
