"""`labelloop layers list|add|rename|delete`: a project's analysis in layers (regions, and the objects inside them)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from labelloop.cli.common import JsonOpt, ProjectOpt, out, output, project_from
from labelloop.services.layers import add_layer, delete_layer, list_layers, rename_layer
from labelloop.settings import get_settings

__all__ = ["register"]

app = typer.Typer(help="Layers of a project: regions, and the objects counted inside them.", no_args_is_help=True)


@app.command("list")
def list_(project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """The project's layers: kind, parent, classes and their progress to the first-round target."""
    with project_from(project) as ctx:
        rows = list_layers(ctx, get_settings().target_per_class)
    output(rows, json_out, _print_layers)


def _bar(count: int, target: int) -> str:
    done = int(min(1.0, count / max(1, target)) * 10)
    return "█" * done + "░" * (10 - done)


def _print_layers(rows: list[dict[str, Any]]) -> None:
    table = Table("layer", "kind", "inside", "labelled images", "classes (objects / target)")
    for r in rows:
        classes = "\n".join(f"{c['name']:<16} {_bar(c['count'], c['target'])} {c['count']}/{c['target']}"
                            for c in r["classes"]) or "(no classes yet: labelloop labels add ... --layer NAME)"
        table.add_row(r["name"], r["kind"], r["parent"] or "", f"{r['labelled_images']}/{r['images']}", classes)
    out.print(table)


@app.command("add")
def add(name: Annotated[str, typer.Argument(help="the new layer's name, e.g. cells")],
        kind: Annotated[str, typer.Option("--kind", "-k", help="regions | detect | segment")],
        parent: Annotated[str | None, typer.Option(
            "--parent", help="the layer whose regions this layer's objects live in")] = None,
        labels: Annotated[str, typer.Option("--labels", help="comma-separated classes")] = "",
        project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Add a layer (with all the project's images, none labelled in it yet)."""
    with project_from(project) as ctx:
        info = add_layer(ctx, name, kind, parent=parent, labels=[x for x in labels.split(",") if x.strip()],
                         actor="cli")
    output(info, json_out, lambda i: out.print(
        f"added layer [bold]{i.name}[/] ({i.kind})" + (f" inside {i.parent}" if i.parent else "")
        + f": work on it with --layer {i.name}"))


@app.command("rename")
def rename(name: Annotated[str, typer.Argument(help="the layer's name now")],
           new_name: Annotated[str, typer.Argument(help="its new name")],
           project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Rename a layer; its classes, annotations and models stay."""
    with project_from(project) as ctx:
        info = rename_layer(ctx, name, new_name)
    output(info, json_out, lambda i: out.print(f"layer {name} is now [bold]{i.name}[/]: --layer {i.name}"))


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="the layer to delete")],
           yes: Annotated[bool, typer.Option("--yes", help="delete without asking")] = False,
           project: ProjectOpt = None, json_out: JsonOpt = False) -> None:
    """Delete a layer with its classes, annotations and models (the images stay in the other layers)."""
    if not yes and not typer.confirm(f"delete layer {name!r} with all its annotations and models?"):
        raise typer.Exit(1)
    with project_from(project) as ctx:
        gone = delete_layer(ctx, name)
    output(gone, json_out, lambda g: out.print(
        f"deleted layer [bold]{g['layer']}[/]: {g['annotations']} annotations, {g['models']} models"))


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="layers")
