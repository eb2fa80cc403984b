"""Layers on generated data: a ``regions`` layer (tumour) and a child object layer (cells) in one
project. Cells are everywhere in the images, but the child only learns, proposes and counts inside
its parent's regions."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from labelloop.core.predictions import Predictions
from labelloop.errors import ConflictError, InvalidInputError, NotFoundError, TrainingError
from labelloop.services.annotations import AnnotationInput, create_annotation, image_annotations
from labelloop.services.datasets import training_data
from labelloop.services.images import add_image_files
from labelloop.services.labels import list_labels
from labelloop.services.layers import (
    add_layer,
    layer_context,
    layers_of,
    list_layers,
    parent_regions_view,
    region_counts,
)
from labelloop.services.preannotate import preannotate
from labelloop.services.projects import project_overview
from labelloop.services.suggest import suggest_images
from labelloop.store.project import init_project, open_project
from labelloop.store.tables import Image, Project
from labelloop.training.data import prepare_arrays
from selection.loopkit import add_fake_model

SIZE = 96
#: the tumour region of every image: its left half (with a margin)
TUMOUR = (4.0, 4.0, 44.0, 92.0)
#: cells: three inside the tumour, two outside it
CELLS = [(10, 10, 18, 18), (20, 40, 28, 48), (30, 70, 38, 78), (60, 20, 68, 28), (70, 60, 78, 68)]
INSIDE = [True, True, True, False, False]


def _rect(box: tuple[float, float, float, float]) -> list[list[float]]:
    x0, y0, x1, y1 = box
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def _write_images(folder: Path, n: int) -> list[tuple[str, Path]]:
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n):
        rng = np.random.default_rng(i)
        px = np.full((SIZE, SIZE, 3), 60, dtype=np.uint8) + rng.integers(0, 20, (SIZE, SIZE, 3), dtype=np.uint8)
        x0, y0, x1, y1 = (int(v) for v in TUMOUR)
        px[y0:y1, x0:x1] += 90
        for cx0, cy0, cx1, cy1 in CELLS:
            px[cy0:cy1, cx0:cx1] = (200, 30, 30)
        path = folder / f"img_{i:02d}.png"
        PILImage.fromarray(px).save(path)
        files.append((path.name, path))
    return files


@pytest.fixture
def analysis(tmp_path):
    """A regions project (tumour) with a child layer of cells, and 8 images."""
    ctx = init_project(tmp_path / "proj", task="regions", labels=["tumour"])
    add_image_files(ctx, _write_images(tmp_path / "src", 8), actor="t")
    add_layer(ctx, "cells", "detect", parent="regions", labels=["cell"], actor="t")
    yield ctx, layer_context(ctx, "regions"), layer_context(ctx, "cells")
    ctx.close()


def _ids(ctx) -> dict[str, int]:
    with ctx.store.session() as s:
        return dict(s.execute(select(Image.file_name, Image.id).where(Image.project_id == ctx.id)).all())


def _label_parent(regions, names: list[str], box=TUMOUR, label: str = "tumour") -> None:
    ids = _ids(regions)
    for name in names:
        create_annotation(regions, ids[name], AnnotationInput(label=label, polygons=_rect(box)), actor="t")


def _label_cells(cells, names: list[str], *, also_outside: bool = False) -> None:
    ids = _ids(cells)
    for name in names:
        for box, inside in zip(CELLS, INSIDE, strict=True):
            if inside or also_outside:
                create_annotation(cells, ids[name], AnnotationInput(label="cell", bbox=box), actor="t")


def test_a_project_of_one_layer_is_what_it_always_was(tmp_path):
    ctx = init_project(tmp_path / "p", task="detect", labels=["car"])
    try:
        assert [(i.name, i.kind, i.parent) for i in layers_of(ctx)] == [("objects", "detect", None)]
        assert ctx.layer == "objects" and ctx.project_id == ctx.id
        assert layer_context(ctx, None) is ctx and layer_context(ctx, "objects") is ctx
        with pytest.raises(NotFoundError) as err:
            layer_context(ctx, "cells")
        assert "objects" in err.value.hint
    finally:
        ctx.close()


def test_a_new_layer_holds_the_projects_images_with_classes_and_status_of_its_own(analysis, tmp_path):
    ctx, regions, cells = analysis
    assert [(i.name, i.kind, i.parent) for i in layers_of(ctx)] == [("regions", "regions", None),
                                                                   ("cells", "detect", "regions")]
    assert sorted(_ids(regions)) == sorted(_ids(cells)) and len(_ids(cells)) == 8
    assert set(_ids(regions).values()).isdisjoint(_ids(cells).values())  # rows of their own
    assert [c["name"] for c in list_labels(regions)] == ["background", "tumour"]
    assert [c["name"] for c in list_labels(cells)] == ["cell"]
    # an image added to a child layer is in every layer
    extra = _write_images(tmp_path / "more", 9)[8:]
    add_image_files(cells, extra, actor="t")
    assert "img_08.png" in _ids(regions) and "img_08.png" in _ids(ctx)
    _label_cells(cells, ["img_00.png"])
    with ctx.store.session() as s:
        status = dict(s.execute(select(Image.project_id, Image.status).where(Image.file_name == "img_00.png")).all())
    assert status == {regions.id: "new", cells.id: "annotated"}
    rows = {r["name"]: r for r in list_layers(cells)}
    assert rows["cells"]["classes"] == [{"name": "cell", "count": 3, "target": 20}] and rows["cells"]["current"]
    assert rows["regions"]["labelled_images"] == 0 and rows["cells"]["labelled_images"] == 1
    # the project is listed once; reopening it gives its first layer
    reopened = open_project(ctx.root)
    try:
        assert reopened.layer == "regions" and layer_context(reopened, "cells").id == cells.id
    finally:
        reopened.close()


def test_bad_layers_are_refused_with_the_fix(analysis):
    ctx, _, _ = analysis
    with pytest.raises(ConflictError):
        add_layer(ctx, "cells", "detect")
    with pytest.raises(InvalidInputError, match="kind"):
        add_layer(ctx, "nuclei", "points")
    with pytest.raises(NotFoundError) as err:
        add_layer(ctx, "nuclei", "detect", parent="tissue")
    assert "regions, cells" in err.value.hint
    with pytest.raises(InvalidInputError, match="layer name"):
        add_layer(ctx, "a;b", "detect")
    with pytest.raises(InvalidInputError) as many:
        layer_context(ctx, None)
    assert "regions, cells" in many.value.message and "--layer" in many.value.hint
    assert len(layers_of(ctx)) == 2  # nothing half made


def test_a_child_trains_only_inside_its_parents_regions(analysis):
    _, regions, cells = analysis
    names = [f"img_{i:02d}.png" for i in range(6)]
    _label_parent(regions, names[:5])  # the parent has not labelled img_05 yet
    _label_cells(cells, names, also_outside=True)  # even a box drawn outside the tumour
    data = training_data(cells)
    used = {s.image_id for s in data.train + data.val}
    ids = _ids(cells)
    assert used == {ids[n] for n in names[:5]}  # img_05 left out: no parent regions there yet
    sample = data.train[0]
    assert sample.area is not None
    image, arrays = prepare_arrays(sample, "detect")
    assert len(arrays["labels"]) == sum(INSIDE)  # the two cells outside the tumour are not taught
    assert image.shape[1] <= TUMOUR[2] - TUMOUR[0] + 1  # cropped to the region
    # a child image whose parent says "all background here" teaches nothing either
    _label_parent(regions, [names[5]], box=(0.0, 0.0, SIZE, SIZE), label="background")
    assert {s.image_id for s in training_data(cells).train + training_data(cells).val} == used


def test_a_child_without_parent_regions_says_where_to_label(analysis):
    _, _, cells = analysis
    _label_cells(cells, [f"img_{i:02d}.png" for i in range(4)])
    with pytest.raises(TrainingError) as err:
        training_data(cells)
    assert "regions of layer 'regions'" in err.value.hint


class _Everywhere:
    """A planted model that finds every cell, inside the tumour and outside it."""

    classes: ClassVar[list[str]] = ["cell"]
    task = "detect"
    backend = "planted"

    def predict(self, image: np.ndarray) -> Predictions:
        return Predictions(np.array(CELLS, dtype=np.float32), np.full(len(CELLS), 0.9), np.zeros(len(CELLS), int))

    def embed(self, image: np.ndarray) -> np.ndarray:
        v = image.reshape(-1, 3).mean(axis=0).astype(np.float32)
        return v / max(float(np.linalg.norm(v)), 1e-6)


def test_child_proposals_outside_the_parents_regions_are_dropped(analysis):
    _, regions, cells = analysis
    _label_parent(regions, ["img_06.png"])
    model = add_fake_model(cells, ["cell"])
    result = preannotate(cells, model_id=model, images="unlabeled", threshold=0.5, predictor=_Everywhere())
    ids = _ids(cells)
    kept = {n: [a["bbox"] for a in image_annotations(cells, ids[n])] for n in ("img_06.png", "img_07.png")}
    assert sorted(tuple(b) for b in kept["img_06.png"]) == sorted(
        tuple(float(v) for v in c) for c, inside in zip(CELLS, INSIDE, strict=True) if inside)
    assert kept["img_07.png"] == []  # the parent has not labelled it: nothing is inside a region yet
    assert result["parent_layer"] == "regions"
    assert result["outside_parent"] == sum(not i for i in INSIDE) + 7 * len(CELLS)  # img_06's two + 7 images


def test_a_child_pseudo_labels_only_inside_its_parents_regions(analysis):
    from labelloop.services.pseudo import pseudo_samples
    from labelloop.services.training import model_row

    _, regions, cells = analysis
    names = [f"img_{i:02d}.png" for i in range(8)]
    _label_parent(regions, names[:7])  # img_07: no parent regions yet
    _label_cells(cells, names[:4])  # img_04..07 unlabelled
    with cells.store.session() as s:  # two validation images for the pseudo-label thresholds
        for img in s.scalars(select(Image).where(Image.project_id == cells.id, Image.file_name.in_(names[:4]))):
            img.split = "val" if img.file_name in names[:2] else "train"
    parent = model_row(cells, add_fake_model(cells, ["cell"]))
    extra = pseudo_samples(cells, parent, ["cell"], 10, predictor=_Everywhere())
    ids = _ids(cells)
    assert sorted(s.image_id for s in extra) == sorted(ids[n] for n in names[4:7])  # not img_07
    inside = np.array([c for c, i in zip(CELLS, INSIDE, strict=True) if i], dtype=np.float32)
    for smp in extra:
        assert np.array_equal(np.sort(smp.boxes, axis=0), np.sort(inside, axis=0))  # the two outside are dropped
        assert smp.area is not None  # and training sees the parent's regions, as for labelled images
        _, arrays = prepare_arrays(smp, "detect")
        assert len(arrays["labels"]) == sum(INSIDE)


def test_objects_are_counted_per_parent_region(analysis):
    _, regions, cells = analysis
    ids = _ids(regions)
    create_annotation(regions, ids["img_00.png"], AnnotationInput(label="tumour", polygons=_rect((4, 4, 44, 30))),
                      actor="t")
    create_annotation(regions, ids["img_00.png"], AnnotationInput(label="tumour", polygons=_rect((4, 32, 44, 92))),
                      actor="t")
    _label_cells(cells, ["img_00.png"], also_outside=True)
    rows = sorted(region_counts(cells), key=lambda r: r["area_px"])
    assert [r["counts"] for r in rows] == [{"cell": 1}, {"cell": 2}]
    assert all(r["image"] == "img_00.png" and r["region_class"] == "tumour" for r in rows)
    with pytest.raises(InvalidInputError, match="no parent"):
        region_counts(regions)


def test_deleting_the_project_takes_its_layers(analysis):
    ctx, _, cells = analysis
    with ctx.store.session() as s:
        s.delete(s.get(Project, ctx.id))
    with ctx.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0
        assert s.scalar(select(func.count()).select_from(Image).where(Image.project_id == cells.id)) == 0


def test_the_child_image_shows_its_parents_regions(analysis):
    _, regions, cells = analysis
    ids = _ids(cells)
    assert parent_regions_view(cells, ids["img_01.png"]) == {"layer": "regions", "labelled": False, "regions": []}
    _label_parent(regions, ["img_01.png"])
    view = parent_regions_view(cells, ids["img_01.png"])
    assert view["labelled"] and [(r["label"], r["polygons"]) for r in view["regions"]] == [("tumour", _rect(TUMOUR))]
    assert parent_regions_view(regions, _ids(regions)["img_01.png"])["layer"] is None  # the parent has none


def test_a_child_is_suggested_only_images_inside_its_parents_regions(analysis):
    _, regions, cells = analysis
    _label_parent(regions, ["img_03.png", "img_05.png"])
    model = add_fake_model(cells, ["cell"])
    picks = suggest_images(cells, n=8, model_id=model, predictor=_Everywhere(), tta=False)
    ids = _ids(cells)
    assert sorted(p["image_id"] for p in picks) == sorted([ids["img_03.png"], ids["img_05.png"]])


def test_a_child_layer_home_says_to_label_the_parent_first(analysis):
    _, regions, cells = analysis
    first = project_overview(cells)["next"][0]
    assert first["action"] == "parent" and first["layer"] == "regions" and "regions" in first["text"]
    _label_parent(regions, ["img_00.png"])
    assert all(step["action"] != "parent" for step in project_overview(cells)["next"])
    assert all(step["action"] != "parent" for step in project_overview(regions)["next"])


def test_a_sweep_worker_opens_the_layer_it_was_started_on(analysis):
    from labelloop.services.sweep import open_sweep_project

    ctx, _, cells = analysis
    worker = open_sweep_project(str(ctx.root), ctx.store.url, "cells")
    try:
        assert worker.id == cells.id and worker.layer == "cells"
    finally:
        worker.close()


def test_a_layer_is_renamed_and_deleted_with_its_work_only(analysis):
    from labelloop.services.layers import delete_layer, rename_layer
    from labelloop.store.tables import Annotation, TrainedModel

    ctx, regions, cells = analysis
    _label_parent(regions, ["img_00.png"])
    _label_cells(cells, ["img_00.png", "img_01.png"])
    model = add_fake_model(cells, ["cell"])
    info = rename_layer(ctx, "cells", "nuclei")
    assert (info.name, info.kind, info.parent) == ("nuclei", "detect", "regions")
    renamed = layer_context(ctx, "nuclei")
    assert renamed.id == cells.id and len(image_annotations(renamed, _ids(renamed)["img_00.png"])) == 3
    with pytest.raises(NotFoundError):
        layer_context(ctx, "cells")
    with pytest.raises(ConflictError, match="exists already"):
        rename_layer(ctx, "nuclei", "regions")
    with pytest.raises(InvalidInputError, match="bad layer name"):
        rename_layer(ctx, "nuclei", "/etc")
    add_layer(ctx, "inner", "detect", parent="nuclei", labels=["dot"])
    with pytest.raises(ConflictError, match="inner"):  # a parent goes after its children
        delete_layer(ctx, "nuclei")
    with pytest.raises(InvalidInputError, match="first layer"):
        delete_layer(ctx, "regions")
    assert delete_layer(ctx, "inner")["annotations"] == 0
    assert (ctx.root / "models" / str(model)).is_dir()
    gone = delete_layer(ctx, "nuclei")
    assert gone == {"layer": "nuclei", "annotations": 6, "models": 1}
    assert [i.name for i in layers_of(ctx)] == ["regions"]
    assert not (ctx.root / "models" / str(model)).exists()
    with ctx.store.session() as s:
        for table in (Image, Annotation, TrainedModel):
            assert s.scalar(select(func.count()).select_from(table).where(table.project_id == cells.id)) == 0
        assert s.scalar(select(func.count()).select_from(Image).where(Image.project_id == regions.id)) == 8
    assert len(image_annotations(regions, _ids(regions)["img_00.png"])) == 1  # the parent's work is kept


def test_a_job_finds_the_first_layer_after_another_process_renamed_it(analysis):
    """A server keeps its open context; a rename by another process (the CLI) leaves that context's
    name stale. Jobs name the first layer by ``layer_ref`` (``""``), so they still find it."""
    from labelloop.jobs.runner import JobContext
    from labelloop.services.layers import rename_layer

    ctx, _regions, cells = analysis
    elsewhere = open_project(ctx.root)
    try:
        rename_layer(elsewhere, "regions", "tissue")
    finally:
        elsewhere.close()
    assert ctx.layer == "regions" and ctx.layer_ref == ""  # stale name; the reference does not depend on it
    assert cells.layer_ref == "cells"

    opened = []

    def worker_opens(_slug: str):
        opened.append(open_project(ctx.root))
        return opened[-1]

    def job(ref: str) -> JobContext:
        return JobContext(ctx.store, 1, "train", {"project": "p", "layer": ref}, "t", worker_opens)

    try:
        found = job(ctx.layer_ref).project()
        assert (found.id, found.layer) == (ctx.id, "tissue")
        assert job(cells.layer_ref).project().id == cells.id
        with pytest.raises(NotFoundError, match="tissue"):  # what naming it by the stale name did before
            job(ctx.layer).project()
    finally:
        for c in opened:
            c.close()
