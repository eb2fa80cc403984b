"""Project commands: init, import, export, stats, split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from labelloop.cli.common import JsonOpt, LayerOpt, ProjectOpt, out, output, progress_bar, project_from
from labelloop.services.exporting import ExportReport, export_project
from labelloop.services.importing import ImportReport, import_path
from labelloop.services.layers import region_counts
from labelloop.services.projects import new_project
from labelloop.services.splitting import assign_splits
from labelloop.services.stats import project_stats

__all__ = ["register"]


def init(
    directory: Annotated[Path, typer.Argument(help="project folder")] = Path("."),
    task: Annotated[str, typer.Option(help="detect | segment | regions")] = "detect",
    labels: Annotated[str, typer.Option(help="comma-separated class names")] = "",
    name: Annotated[str | None, typer.Option(help="project name (default: folder name)")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a project in DIRECTORY."""
    ctx = new_project(directory, task=task, name=name, labels=labels.split(",") if labels else [])
    ctx.close()
    output({"root": str(ctx.root), "name": ctx.name, "task": ctx.task, "uid": ctx.uid}, json_out,
         lambda d: out.print(f"created {d['task']} project [bold]{d['name']}[/] in {d['root']}"))


def import_(
    source: Annotated[Path, typer.Argument(help="annotation file or dataset folder")],
    format: Annotated[str | None, typer.Option("--format", "-f", help="format (default: detect)")] = None,
    link: Annotated[bool, typer.Option(help="reference images in place instead of copying")] = False,
    skip_invalid: Annotated[bool, typer.Option(help="import the valid records, report the rest")] = False,
    allow_missing_images: Annotated[bool, typer.Option(
        help="register images whose files are not there yet (sizes from the annotations)")] = False,
    follow_links: Annotated[bool, typer.Option(
        help="accept images that are links to files outside the dataset")] = False,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Import annotations and images (COCO, YOLO, VOC, CVAT, Label Studio, VIA, LabelMe, mask folders)."""
    with project_from(project, layer) as ctx, progress_bar(not json_out) as progress:
        report = import_path(ctx, source, format=format, link=link, skip_invalid=skip_invalid,
                             allow_missing_images=allow_missing_images, follow_links=follow_links,
                             progress=progress)
    output(report, json_out, _print_import)


def _print_import(report: ImportReport) -> None:
    out.print(f"imported {report.images_added} images ({report.images_matched} already there) and "
              f"{report.annotations_added} annotations from {report.format}")
    if report.labels_added:
        out.print(f"new classes: {', '.join(report.labels_added)}")
    for d in report.damaged[:50]:
        out.print(f"[yellow]warning:[/] {escape(d['file_name'])} is damaged, imported as it decodes: "
                  f"{escape(d['reason'])}")
    if report.skipped:
        out.print(f"[yellow]skipped {len(report.skipped)} invalid records:[/]")
        for line in report.skipped[:50]:
            out.print(f"  {line}", markup=False)
        if len(report.skipped) > 50:
            out.print(f"  ... and {len(report.skipped) - 50} more (use --json for all)")


def export(
    out_dir: Annotated[Path, typer.Argument(metavar="OUT", help="folder to write")],
    format: Annotated[str, typer.Option("--format", "-f", help="coco | yolo | voc | cvat | labelstudio")],
    split: Annotated[str | None, typer.Option(help="train | val | test | none")] = None,
    include_proposals: Annotated[bool, typer.Option(help="add unreviewed model proposals")] = False,
    no_images: Annotated[bool, typer.Option("--no-images", help="annotation files only")] = False,
    link_images: Annotated[bool, typer.Option(help="symlink images instead of copying")] = False,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Export the project so another tool can read it as it is."""
    mode = "none" if no_images else ("link" if link_images else "copy")
    with project_from(project, layer) as ctx:
        report = export_project(ctx, out_dir, format=format, split=split,
                                include_proposals=include_proposals, images=mode)
    output(report, json_out, _print_export)


def _print_export(report: ExportReport) -> None:
    out.print(f"wrote {report.images} images and {report.annotations} annotations as {report.format} "
              f"to {report.out}")
    if report.missing_images:
        shown = ", ".join(report.missing_images[:10]) + (" ..." if len(report.missing_images) > 10 else "")
        out.print(f"[yellow]{len(report.missing_images)} image file(s) are missing from the project and were "
                  f"not copied[/] (their annotations were): {shown}; `labelloop doctor` lists them all")


def stats(project: ProjectOpt = None, layer: LayerOpt = None, json_out: JsonOpt = False,
          per_region: Annotated[bool, typer.Option(
              "--per-region", help="count this layer's objects in each region of its parent layer")] = False,
          ) -> None:
    """Images by status and split; annotations per class against the first-round target."""
    with project_from(project, layer) as ctx:
        data = project_stats(ctx)
        if per_region:
            data["per_region"] = region_counts(ctx)
    output(data, json_out, _print_stats)


def _print_stats(data: dict[str, Any]) -> None:
    imgs = data["images"]
    out.print(f"[bold]{data['project']}[/] ({data['task']}): {imgs['total']} images, "
              f"{data['annotations']['total']} annotations, {data['annotations']['proposals']} proposals")
    out.print("  by status: " + ", ".join(f"{k} {v}" for k, v in sorted(imgs["by_status"].items())))
    out.print("  by split:  " + ", ".join(f"{k} {v}" for k, v in sorted(imgs["by_split"].items())))
    if imgs.get("damaged"):
        out.print(f"  [yellow]damaged: {imgs['damaged']}[/] (truncated, missing or changed files: `labelloop doctor`)")
    table = Table("class", "annotations", f"target {data['target_per_class']}", "proposals")
    for c in data["classes"]:
        done = min(1.0, c["annotations"] / max(1, c["target"]))
        bar = "█" * int(done * 20) + "░" * (20 - int(done * 20))
        table.add_row(c["name"], str(c["annotations"]), bar, str(c["proposals"]))
    out.print(table)
    if "per_region" in data:
        _print_regions(data["per_region"])
    out.print("ready for a first training round" if data["ready_to_train"] else
              "annotate the classes below target before the first training round")


def _print_regions(rows: list[dict[str, Any]]) -> None:
    classes = sorted({c for r in rows for c in r["counts"]})
    table = Table("image", "region", "class", "area (px)", *classes, "proposed")
    for r in rows:
        table.add_row(r["image"], str(r["region_id"]), r["region_class"], str(r["area_px"]),
                      *(str(r["counts"].get(c, 0)) for c in classes), str(sum(r["proposed"].values())))
    out.print(table if rows else "no parent regions yet: label the parent layer's images first")


def doctor(
    fix: Annotated[bool, typer.Option("--fix", help="record each problem on its image (shown in stats and the "
                                      "web app, filterable), clear it where the file is whole again")] = False,
    project: ProjectOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Re-read every stored image: missing, changed since import, damaged (truncated) or unreadable files."""
    from labelloop.services.doctor import check_images

    with project_from(project) as ctx, progress_bar(not json_out) as progress:
        report = check_images(ctx, fix=fix, progress=progress)
    output(report, json_out, lambda r: _print_doctor(r, fix))


def _print_doctor(report: dict[str, Any], fix: bool) -> None:
    if not report["problems"]:
        out.print(f"all {report['checked']} images are whole")
        return
    table = Table("image", "file", "problem", "why")
    for p in report["problems"][:200]:
        table.add_row(str(p["image_id"]), p["file_name"], p["problem"], p["reason"])
    out.print(table)
    counts = ", ".join(f"{n} {k}" for k, n in report["counts"].items())
    out.print(f"{len(report['problems'])} of {report['checked']} images have a problem ({counts}); "
              + (f"recorded on {report['fixed']} images" if fix else "`labelloop doctor --fix` records them"))


def split(
    val: Annotated[float, typer.Option(help="validation fraction")] = 0.2,
    test: Annotated[float, typer.Option(help="test fraction")] = 0.0,
    seed: Annotated[int, typer.Option(help="seed of the placement order")] = 0,
    project: ProjectOpt = None, layer: LayerOpt = None,
    json_out: JsonOpt = False,
) -> None:
    """Assign labelled images without a split (stratified by class; never moves assigned ones)."""
    with project_from(project, layer) as ctx:
        result = assign_splits(ctx, val=val, test=test, seed=seed)
    output(result, json_out, _print_split)


def _print_split(result: dict[str, Any]) -> None:
    t = result["totals"]
    out.print(f"placed {sum(result['assigned'].values())} images; now train {t['train']}, val {t['val']}, "
              f"test {t['test']}")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command("import")(import_)
    app.command()(export)
    app.command()(stats)
    app.command()(doctor)
    app.command()(split)
