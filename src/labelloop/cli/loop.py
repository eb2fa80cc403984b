"""The loop: `labelloop preannotate`, `review`, `suggest`, `qa`, `report` and `simulate`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from labelloop.cli.common import JsonOpt, LayerOpt, ProjectOpt, out, output, project_from, warn_skipped
from labelloop.cli.common import progress_bar as _bars
from labelloop.core.unreadable import Unreadable

__all__ = ["register"]


@contextmanager
def progress_bar(enabled: bool = True) -> Iterator[Callable[[str, int, int], None]]:
    """Rich bars that appear with the first update, so an early error prints one clean line."""
    with ExitStack() as stack:
        bars: list[Callable[[str, int, int], None]] = []

        def update(stage: str, done: int, total: int) -> None:
            if not bars:
                bars.append(stack.enter_context(_bars(enabled)))
            bars[0](stage, done, total)

        yield update


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


def preannotate(
    model: Annotated[int | None, typer.Option("--model", help="model id (default: the newest ready model)")] = None,
    images: Annotated[str, typer.Option(
        "--images", help='unlabeled | all | a filter: "status=new", "split=val", "name=cars/*.jpg", "ids=1,2" '
                         "or a file-name glob")] = "unlabeled",
    threshold: Annotated[str, typer.Option(
        "--threshold", help='auto (per class: least expected review time on the validation split) | best-f1 | '
                            '0.4 | "car=0.6;person=0.3"')] = "auto",
    target_precision: Annotated[float | None, typer.Option(
        "--target-precision", help="with auto: the lowest threshold reaching this precision")] = None,
    backend: Annotated[str, typer.Option(help="auto | onnx | torch")] = "auto",
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Let a model propose annotations (review state `proposed`); human labels are never touched."""
    from labelloop.services.preannotate import preannotate as run

    with project_from(project, layer) as ctx, progress_bar(not json_out) as bar:
        result = run(ctx, model_id=model, images=images, threshold=threshold, target_precision=target_precision,
                     backend=backend, progress=bar)
    output(result, json_out, _print_preannotate)


def _print_preannotate(result: dict[str, Any]) -> None:
    out.print(f"model {result['model_id']} ({result['backend']}): {result['proposals']} proposals on "
              f"{result['images']} images; {result['replaced']} earlier unreviewed proposals of this model replaced")
    t = Table("class", "threshold", "precision", "recall", "review s/image", "chosen by")
    for name, th in result["thresholds"].items():
        t.add_row(name, _fmt(th["threshold"]), _fmt(th.get("precision")), _fmt(th.get("recall")),
                  _fmt(th.get("expected_seconds"), 1), th["method"])
    out.print(t)
    warn_skipped(result["skipped"])
    if result["classes_not_in_project"]:
        out.print(f"[yellow]classes of the model not in the project (ignored):[/] "
                  f"{', '.join(result['classes_not_in_project'])}")


def review(
    accept_above: Annotated[float | None, typer.Option("--accept-above", help="accept proposals scoring >= this")
                            ] = None,
    reject_below: Annotated[float | None, typer.Option("--reject-below", help="reject proposals scoring < this")
                            ] = None,
    image: Annotated[int | None, typer.Option("--image", help="only this image id")] = None,
    model: Annotated[int | None, typer.Option("--model", help="only proposals of this model")] = None,
    reviewer: Annotated[str | None, typer.Option("--reviewer", help="recorded as the reviewer (default: OS user)")
                        ] = None,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Accept or reject open proposals by score (every decision is recorded in the history)."""
    from labelloop.services.review import review_proposals

    with project_from(project, layer) as ctx, progress_bar(not json_out) as bar:
        result = review_proposals(ctx, accept_above=accept_above, reject_below=reject_below, image_id=image,
                                  model_id=model, reviewer=reviewer, progress=bar)
    output(result, json_out, lambda r: out.print(
        f"{r['reviewer']}: accepted {r['accepted']}, rejected {r['rejected']} on {r['images']} images; "
        f"{r['left']} proposals left to review"))


def suggest(
    n: Annotated[int, typer.Option("--n", help="how many images")] = 50,
    model: Annotated[int | None, typer.Option("--model", help="model id (default: the newest ready model)")] = None,
    no_tta: Annotated[bool, typer.Option("--no-tta", help="skip the mirrored second prediction (2x faster)")] = False,
    strategy: Annotated[str | None, typer.Option("--strategy", help="random (default) | mixed | diversity | "
                                                 "uncertainty | class-deficit | hybrid | effort")] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the random parts (random, hybrid)")] = 0,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Which unlabelled images to annotate next, and why."""
    from labelloop.services.suggest import DEFAULT_STRATEGY, suggest_images

    skipped = Unreadable("suggest")
    with project_from(project, layer) as ctx, progress_bar(not json_out) as bar:
        items = suggest_images(ctx, n=n, model_id=model, tta=not no_tta, strategy=strategy or DEFAULT_STRATEGY,
                               seed=seed, progress=bar, unreadable=skipped)
    warn_skipped(skipped.items)
    output(items, json_out, _print_suggestions)


def _print_suggestions(items: list[dict[str, Any]]) -> None:
    if items:
        from labelloop.selection.strategies import strategy_note

        out.print(f"strategy {items[0]['strategy']}, scored by model {items[0]['model_id']} "
                  f"(round {items[0]['model_round']})")
        out.print(f"[dim]{strategy_note(items[0]['strategy'])}[/]")
    t = Table("#", "image", "file", "score", "why")
    for it in items:
        t.add_row(str(it["rank"]), str(it["image_id"]), it["file_name"], _fmt(it["score"]), "; ".join(it["reasons"]))
    out.print(t)


def qa(
    model: Annotated[int | None, typer.Option("--model", help="model id (default: the newest ready model)")] = None,
    folds: Annotated[int, typer.Option("--folds", help="train K quick models for out-of-fold predictions on "
                                                       "every labelled image (0 = validation split only)")] = 0,
    args: Annotated[str, typer.Option("--args", help='training arguments for --folds, e.g. "epochs=5"')] = "",
    min_score: Annotated[float, typer.Option("--min-score", help="predictions below this are ignored")] = 0.5,
    limit: Annotated[int | None, typer.Option("--limit", help="show at most this many")] = None,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Labels that look wrong (wrong class, missing or badly placed boxes, duplicates, size spread)."""
    from labelloop.services.qa import find_label_issues

    skipped = Unreadable("label check")
    with project_from(project, layer) as ctx, progress_bar(not json_out) as bar:
        items = find_label_issues(ctx, model_id=model, folds=folds, args=args, min_score=min_score, limit=limit,
                                  progress=bar, unreadable=skipped)
    warn_skipped(skipped.items)
    output(items, json_out, _print_label_issues)


def _print_label_issues(items: list[dict[str, Any]]) -> None:
    if not items:
        out.print("no likely label errors found")
        return
    t = Table("score", "kind", "image", "annotation", "what")
    for it in items:
        t.add_row(_fmt(it["score"], 2), it["kind"], it["file_name"] or "", str(it["annotation_id"] or ""),
                  it["message"])
    out.print(t)


def report(
    costs: Annotated[str | None, typer.Option("--costs", help='seconds per action, e.g. "draw=7;fix=3;accept=0.5"')
                     ] = None,
    out_path: Annotated[Path | None, typer.Option("--out", help="also write a plot, e.g. report.png")] = None,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Human effort per round (actions, estimated time with the loop vs from scratch) and model mAP."""
    from labelloop.services.effort import effort_report, plot_effort

    with project_from(project, layer) as ctx:
        data = effort_report(ctx, costs=costs)
    if out_path is not None:
        data["plot"] = str(plot_effort(data, out_path))
    output(data, json_out, _print_report)


def _print_report(data: dict[str, Any]) -> None:
    _effort_table(data["rounds"])
    total = data["total"]
    out.print(f"total: {_minutes(total['seconds_loop'])} with the loop vs {_minutes(total['seconds_scratch'])} "
              f"from scratch (ratio {_fmt(total['ratio'], 2)}; after round 0: {_fmt(total['ratio_after_round0'], 2)}, "
              f"{_fmt(total['share_of_saving_after_round0'], 2)} of what a perfect model would save)")
    out.print("costs (s): " + ", ".join(f"{k} {v:g}" for k, v in data["costs"].items()))
    if "plot" in data:
        out.print(f"plot: {data['plot']}")


def _effort_table(rows: list[dict[str, Any]]) -> None:
    t = Table("round", "mAP@.5", "images", "actions", "loop", "scratch", "ratio", "share of saving")
    short = {"inspect": "inspect", "draw": "draw", "accept": "accept", "fix": "fix", "delete": "delete",
             "class_change": "class", "click": "click"}
    for r in rows:
        acts = ", ".join(f"{n} {short[k]}" for k, n in r["actions"].items() if n)
        t.add_row(str(r["round"]), _fmt(r["map50"]), str(r["images"]), acts or "—", _minutes(r["seconds_loop"]),
                  _minutes(r["seconds_scratch"]), _fmt(r.get("cumulative_ratio", r["ratio"]), 2),
                  _fmt(r.get("share_of_saving"), 2))
    out.print(t)


def simulate(
    dataset: Annotated[Path, typer.Argument(help="a labelled dataset (its ground truth plays the annotator)")],
    format: Annotated[str | None, typer.Option("--format", help="dataset format (default: detected)")] = None,
    seed_per_class: Annotated[int, typer.Option("--seed-per-class", help="round 0: objects per class")] = 20,
    round_size: Annotated[int, typer.Option("--round-size", help="images per round")] = 50,
    rounds: Annotated[int, typer.Option("--rounds", help="rounds after the seed round")] = 3,
    strategy: Annotated[str, typer.Option("--strategy", help="suggest (the default strategy) | random | mixed | "
                                          "diversity | uncertainty | class-deficit | hybrid | effort")] = "suggest",
    base: Annotated[str | None, typer.Option("--base", help="base model")] = None,
    args: Annotated[str, typer.Option("--args", help='training arguments for every round, "k=v;..."')] = "",
    task: Annotated[str, typer.Option("--task", help="detect | segment")] = "detect",
    val_fraction: Annotated[float, typer.Option("--val-fraction", help="fixed validation share")] = 0.15,
    seed: Annotated[int, typer.Option("--seed", help="shuffling seed")] = 0,
    project_dir: Annotated[Path | None, typer.Option("--project-dir", help="keep the project here (default: a "
                                                     "temporary folder, removed at the end)")] = None,
    threshold: Annotated[str, typer.Option("--threshold", help="as for preannotate: auto | best-f1 | 0.4 | ...")
                         ] = "auto",
    click: Annotated[bool, typer.Option("--click/--no-click", help="the annotator uses click-to-box on misses")
                     ] = True,
    final_model: Annotated[bool, typer.Option("--final-model", help="also train on the last round's labels and "
                                              "report that model's mAP (what the last picks bought)")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Replay the whole loop on a labelled dataset and measure the human time it saves."""
    from labelloop.services.simulate import simulate as run

    with progress_bar(not json_out) as bar:
        result = run(dataset, format=format, seed_per_class=seed_per_class, round_size=round_size, rounds=rounds,
                     strategy=strategy, base=base, args=args, project_dir=project_dir, task=task,
                     val_fraction=val_fraction, seed=seed, threshold=threshold, use_click=click,
                     final_model=final_model, progress=bar)
    output(result, json_out, _print_simulation)


def _print_simulation(result: dict[str, Any]) -> None:
    _effort_table(result["rounds"])
    s = result["summary"]
    out.print(f"{result['strategy']}: time with the loop / from scratch after round 0 = {_fmt(s['time_ratio'], 3)} "
              f"({_minutes(s['seconds_loop'])} vs {_minutes(s['seconds_scratch'])}; a perfect model "
              f"{_minutes(s['seconds_perfect'])}: {_fmt(s['share_of_saving'], 2)} of the achievable saving); "
              f"final mAP@.5 {_fmt(s['final_map50'])}")
    out.print(f"project kept in {result['project']}" if result["project"] else
              "the simulated project was temporary and is removed (give --project-dir to keep it)")


def register(app: typer.Typer) -> None:
    app.command()(preannotate)
    app.command()(review)
    app.command()(suggest)
    app.command()(qa)
    app.command()(report)
    app.command()(simulate)
