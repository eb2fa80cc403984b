"""`labelloop train`, `labelloop sweep`, `labelloop flipbook` and `labelloop models ...`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from labelloop.cli.common import JsonOpt, LayerOpt, ProjectOpt, console, out, output, project_from
from labelloop.core.progress import TrainEvent, TrainProgress

__all__ = ["register"]

models_app = typer.Typer(help="Base-model catalog and the project's trained models.", no_args_is_help=True)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@contextmanager
def training_display(enabled: bool) -> Iterator[TrainProgress]:
    """Epoch and step bars with ETA, and one line per finished epoch (losses, mAP)."""
    if not enabled:
        yield lambda event: None
        return
    bars = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    ids: dict[str, Any] = {}

    def on_event(event: TrainEvent) -> None:
        if event["type"] == "skipped":
            for img in event["images"]:
                console.print(f"[yellow]warning:[/] image {img['image_id']} left out: {img['reason']}")
        elif event["type"] == "start":
            if event.get("length_note"):
                console.print(f"[dim]{event['length_note']}[/]")
            bars.start()  # only once training starts: an early error prints alone
            ids["epoch"] = bars.add_task("epochs", total=event["epochs"], info="", completed=event["start_epoch"] - 1)
            ids["step"] = bars.add_task("steps", total=event["steps_per_epoch"], info="")
        elif event["type"] == "step" and ids:
            bars.update(ids["step"], completed=event["step"], info=f"loss {event['loss']:.3f}")
        elif event["type"] == "epoch" and ids:
            m = event["metrics"]
            score = " ".join(f"{k} {_fmt(m[k])}" for k in ("map50", "map", "miou", "precision", "recall") if k in m)
            bars.update(ids["epoch"], completed=event["epoch"], info=score)
            bars.reset(ids["step"], info="")
            bars.console.print(f"epoch {event['epoch']:>3}  loss {event['losses'].get('loss', 0):.4f}  {score}  "
                               f"({event['seconds']:.0f}s)")
        elif event["type"] == "predict_size" and ids:
            if "step" in ids:
                bars.remove_task(ids.pop("step"))
            if "size" not in ids:
                ids["size"] = bars.add_task("pred. size", total=event["total"], info="")
            bars.update(ids["size"], completed=event["done"],
                        info=f"{event['size']} px: {event['seconds_per_image']:.1f} s of review per image")
        elif event["type"] == "end":
            for task in ("step", "size"):
                if task in ids:
                    bars.remove_task(ids.pop(task))
            size = f"; predicts at {event['predict_size']} px" if "predict_size" in event else ""
            bars.console.print(f"stopped: {event['reason']}; best epoch {event['best_epoch']}{size}")

    try:
        yield on_event
    finally:
        if bars.live.is_started:
            bars.stop()


def train(
    base: Annotated[str | None, typer.Option(help="base model (see `labelloop models catalog`)")] = None,
    args: Annotated[str, typer.Option("--args", help='e.g. "epochs=30;batch_size=8;lr=0.004;num_clones=2"')] = "",
    from_model: Annotated[int | None, typer.Option("--from", help="fine-tune from this model id")] = None,
    resume: Annotated[bool, typer.Option(help="continue the last interrupted run")] = False,
    weights: Annotated[Path | None, typer.Option(help="your own torchvision-compatible checkpoint")] = None,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Train a model on the labelled images (80/20 split made if missing), with live progress."""
    from labelloop.services.training import train_project

    if weights is not None:
        args = f"{args};weights={weights}" if args else f"weights={weights}"
    with project_from(project, layer) as ctx, training_display(not json_out) as display:
        record = train_project(ctx, base=base, args=args, from_model=from_model, resume=resume, progress=display)
    output(record, json_out, lambda r: _print_trained(r, ctx.root))


def _print_trained(record: dict[str, Any], root: Path) -> None:
    m = record["metrics"]
    out.print(f"model {record['id']} ({record['base']}, round {record['round']}): {record['status']}; "
              f"mAP@.5 {_fmt(m.get('map50', m.get('miou', 'n/a')))}, mAP {_fmt(m.get('map', 'n/a'))}")
    out.print(f"plots and checkpoints in {root / record['directory']}")


def sweep(
    grid: Annotated[str, typer.Option(help='e.g. "base=fcos-lite0,fasterrcnn-lite2;lr=0.01,0.003;epochs=10,30"')],
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Run many training configurations in parallel; live leaderboard by validation mAP."""
    from labelloop.services.sweep import parse_grid, run_sweep

    def table(rows: list[dict[str, Any]]) -> Table:
        t = Table("model", "base", "args", "status", "epoch", "mAP@.5", title="sweep leaderboard")
        for r in rows:
            status = "stopped early" if r.get("stopped_early") else r["status"]
            t.add_row(str(r["model_id"]), r["base"], r["args"], status, f"{r['epoch']}/{r['epochs']}",
                      f"{r['map50']:.3f}", style="bold green" if r.get("best") else None)
        return t

    with project_from(project, layer) as ctx:
        parse_grid(grid)  # a bad grid is reported before the live table starts
        if json_out:
            result = run_sweep(ctx, grid)
        else:
            with Live(table([]), console=console, refresh_per_second=2) as live:
                result = run_sweep(ctx, grid, on_update=lambda rows: live.update(table(rows)))
                live.update(table(result["leaderboard"]))
    output(result, json_out, _print_sweep)


def _print_sweep(result: dict[str, Any]) -> None:
    for err in result["errors"]:
        out.print(f"[red]failed:[/] {err}")
    if result.get("engine") == "ray tune":
        stopped = sum(1 for r in result["leaderboard"] if r.get("stopped_early"))
        out.print(f"best model: {result['best_model_id']} (Ray Tune trials; ASHA stopped {stopped} early)")
    else:
        out.print(f"best model: {result['best_model_id']} ({result['parallel']} jobs at a time, "
                  f"{result['threads_per_job']} threads each)")


def flipbook(
    model: Annotated[int, typer.Argument(help="model id")],
    out_path: Annotated[Path, typer.Option("--out", help="flip.gif or flip.html")] = Path("flipbook.gif"),
    project: ProjectOpt = None, layer: LayerOpt = None,
) -> None:
    """Render the model's predictions on the fixed validation images, epoch by epoch."""
    from labelloop.services.models import render_model_flipbook

    with project_from(project, layer) as ctx:
        path = render_model_flipbook(ctx, model, out_path)
    out.print(f"wrote {path}")


@models_app.command("catalog")
def catalog(json_out: JsonOpt = False) -> None:
    """Base models to start from, with guidance."""
    from labelloop.services.models import base_model_catalog

    output(base_model_catalog(), json_out, _print_catalog)


def _print_catalog(specs: list[dict[str, Any]]) -> None:
    t = Table("name", "task", "input", "what it is", "when to use it")
    for s in specs:
        t.add_row(s["name"] + (" (default)" if s["default"] else ""), s["task"], str(s["input_size"]),
                  s["summary"], s["guidance"])
    out.print(t)


@models_app.command("list")
def list_(project: ProjectOpt = None, layer: LayerOpt = None, json_out: JsonOpt = False) -> None:
    """The project's trained models."""
    from labelloop.services.models import list_models

    with project_from(project, layer) as ctx:
        rows = list_models(ctx)
    output(rows, json_out, _print_models)


def _print_models(rows: list[dict[str, Any]]) -> None:
    t = Table("id", "name", "base", "round", "parent", "status", "mAP@.5", "mAP", "best epoch")
    for r in rows:
        m = r["metrics"] or {}
        t.add_row(str(r["id"]), r["name"], r["base"], str(r["round"]), str(r["parent_id"] or ""), r["status"],
                  _fmt(m.get("map50", m.get("miou", ""))), _fmt(m.get("map", "")), str(r["best_epoch"] or ""))
    out.print(t)


@models_app.command("show")
def show(model: int,
        project: ProjectOpt = None, layer: LayerOpt = None, json_out: JsonOpt = False) -> None:
    """Arguments, data, metrics per epoch, lineage and plots of a model."""
    from labelloop.services.models import get_model

    with project_from(project, layer) as ctx:
        r = get_model(ctx, model)
    output(r, json_out, _print_model)


def _print_model(r: dict[str, Any]) -> None:
    out.print(f"[bold]model {r['id']}[/] {r['name']} — {r['base']}, round {r['round']}, {r['status']}")
    out.print("lineage: " + " → ".join(f"{x['id']} (r{x['round']}, mAP@.5 {_fmt(x['map50'])})" for x in r["lineage"]))
    shown = {k: ("auto" if k == "predict_scale" and not v else v) for k, v in r["args"].items() if v is not None}
    out.print("arguments: " + ";".join(f"{k}={v}" for k, v in shown.items()))
    if p := r.get("prediction"):
        compared = ", ".join(f"{c['size']} px {c['seconds_per_image']:.1f} s" for c in p["compared"])
        out.print(f"predicts at {p['predict_size']} px (trained at {p['input_size']})"
                  + (f"; review per validation image: {compared}" if compared else ""))
    t = Table("epoch", "loss", "mAP@.5", "mAP", "seconds")
    for e in r["epochs"]:
        t.add_row(str(e["epoch"]), _fmt(e["losses"].get("loss", "")), _fmt(e["metrics"].get("map50", "")),
                  _fmt(e["metrics"].get("map", "")), _fmt(e["seconds"]))
    out.print(t)
    for cls, ap in (r["metrics"].get("ap_per_class") or {}).items():
        out.print(f"  AP {cls}: {_fmt(ap)}")
    for p in r["plots"]:
        out.print(f"  plot: {p}")


@models_app.command("compare")
def compare(models: Annotated[list[int], typer.Argument(help="two or more model ids")],
            project: ProjectOpt = None, layer: LayerOpt = None, json_out: JsonOpt = False) -> None:
    """Compare models side by side (arguments, data, metrics, per-class AP)."""
    from labelloop.services.models import compare_models

    with project_from(project, layer) as ctx:
        data = compare_models(ctx, models)
    output(data, json_out, _print_compare)


def _print_compare(data: dict[str, Any]) -> None:
    t = Table("", *[f"model {m['id']}" for m in data["models"]])
    t.add_row("base", *[m["base"] for m in data["models"]])
    t.add_row("round", *[str(m["round"]) for m in data["models"]])
    t.add_row("train images", *[str(m.get("snapshot", {}).get("n_train_images", "")) for m in data["models"]])
    for key in ("map50", "map", "precision", "recall", "miou"):
        t.add_row(key, *[_fmt(m["metrics"].get(key, "")) for m in data["models"]])
    for cls, aps in data["per_class_ap"].items():
        t.add_row(f"AP {cls}", *[_fmt(a if a is not None else "") for a in aps])
    out.print(t)


@models_app.command("export")
def export(model: int, format: Annotated[str, typer.Option("--format", help="onnx | cvat-function")],
           out_path: Annotated[Path, typer.Option("--out", help="file to write")],
           project: ProjectOpt = None, layer: LayerOpt = None) -> None:
    """Export a model as ONNX, or as a CVAT auto-annotation function module."""
    from labelloop.services.models import export_model

    with project_from(project, layer) as ctx:
        path = export_model(ctx, model, format=format, out=out_path)
    out.print(f"wrote {path}")


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command()(sweep)
    app.command()(flipbook)
    app.add_typer(models_app, name="models")
