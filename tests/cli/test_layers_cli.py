"""A regions-then-objects analysis from the command line: a tumour layer and a cells layer inside it, each
imported, trained (tiny, real) and exported on its own with ``--layer``."""

from __future__ import annotations

import json
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from factories import make_dataset
from helpers import LABELLOOP, run
from labelloop.core.records import AnnotationRecord, DatasetRecord
from labelloop.formats import ReadOptions, WriteOptions, get_format

pytest.importorskip("torch")
pytestmark = pytest.mark.slow


def ok(*args: str):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if "--json" in args else r.stdout


def _datasets(tmp_path: Path) -> tuple[Path, Path]:
    """The same 10 images twice: with tumour polygons (left half) and with cells (inside and outside)."""
    base = make_dataset(tmp_path / "images", n_images=10, labels=("x",), size=(96, 128))
    tumour = DatasetRecord(labels=["tumour"], images=[replace(
        img, annotations=[AnnotationRecord(label="tumour", bbox=(2, 2, 62, 94),
                                           polygons=[[2, 2, 62, 2, 62, 94, 2, 94]])]) for img in base.images])
    rng = np.random.default_rng(0)
    images = []
    for img in base.images:
        anns = []
        for _ in range(4):
            x, y = float(rng.integers(4, 110)), float(rng.integers(4, 80))
            anns.append(AnnotationRecord(label="cell", bbox=(x, y, x + 10, y + 10)))
        images.append(replace(img, annotations=anns))
    get_format("coco").write(tumour, tmp_path / "tumour", WriteOptions())
    get_format("coco").write(DatasetRecord(labels=["cell"], images=images), tmp_path / "cells", WriteOptions())
    return tmp_path / "tumour", tmp_path / "cells"


def test_regions_then_objects_layer_by_layer(tmp_path: Path) -> None:
    proj = str(tmp_path / "proj")
    tumour, cells = _datasets(tmp_path)
    ok("init", proj, "--task", "regions", "--labels", "tumour")
    added = ok("layers", "add", "cells", "--kind", "detect", "--parent", "regions", "--labels", "cell", "-p", proj,
               "--json")
    assert added["name"] == "cells" and added["parent"] == "regions"
    # with two layers a per-layer command must be told which, and says how
    ambiguous = run("stats", "-p", proj)
    assert ambiguous.returncode == 1 and "regions, cells" in ambiguous.stderr and "--layer" in ambiguous.stderr
    assert ok("import", str(tumour), "-p", proj, "--layer", "regions", "--json")["images_added"] == 10
    into_cells = ok("import", str(cells), "-p", proj, "--layer", "cells", "--json")
    assert into_cells["images_added"] == 0 and into_cells["annotations_added"] == 40  # the same images
    layers = {r["name"]: r for r in ok("layers", "list", "-p", proj, "--json")}
    assert layers["regions"]["labelled_images"] == 10 and layers["cells"]["labelled_images"] == 10
    assert [c["name"] for c in layers["regions"]["classes"]] == ["background", "tumour"]
    stats = ok("stats", "-p", proj, "--layer", "cells", "--per-region", "--json")
    assert stats["layer"] == "cells" and stats["annotations"]["total"] == 40
    assert len(stats["per_region"]) == 10 and all(r["region_class"] == "tumour" for r in stats["per_region"])
    # export of one layer holds that layer's classes only, and reads back the same
    out = tmp_path / "out"
    ok("export", str(out), "--format", "coco", "--no-images", "-p", proj, "--layer", "cells", "--json")
    back = get_format("coco").read(out, ReadOptions())
    original = get_format("coco").read(cells, ReadOptions())
    assert back.labels == ["cell"]
    assert sorted((i.file_name, a.bbox) for i in back.images for a in i.annotations) == sorted(
        (i.file_name, a.bbox) for i in original.images for a in i.annotations)
    # the child trains on its own (inside the tumour) and its model is its own
    trained = ok("train", "-p", proj, "--layer", "cells", "--args", "epochs=1;image_size=128;batch_size=4", "--json")
    assert trained["status"] == "ready"
    assert [m["id"] for m in ok("models", "list", "-p", proj, "--layer", "cells", "--json")] == [trained["id"]]
    assert ok("models", "list", "-p", proj, "--layer", "regions", "--json") == []
    # then the regions layer trains in its turn, and the child's proposals stay inside the tumour
    regions_model = ok("train", "-p", proj, "--layer", "regions", "--args", "epochs=1;image_size=128", "--json")
    assert regions_model["status"] == "ready" and regions_model["task"] == "regions"
    proposed = ok("preannotate", "-p", proj, "--layer", "cells", "--images", "all", "--threshold", "0.01", "--json")
    assert proposed["model_id"] == trained["id"] and proposed["parent_layer"] == "regions"
    assert proposed["images"] == 10 and proposed["outside_parent"] >= 0


def test_a_layer_is_renamed_and_deleted_from_the_command_line(tmp_path: Path) -> None:
    proj = str(tmp_path / "proj")
    ok("init", proj, "--task", "regions", "--labels", "tumour")
    ok("layers", "add", "cells", "--kind", "detect", "--parent", "regions", "--labels", "cell", "-p", proj)
    assert ok("layers", "rename", "cells", "nuclei", "-p", proj, "--json")["name"] == "nuclei"
    assert [r["name"] for r in ok("layers", "list", "-p", proj, "--json")] == ["regions", "nuclei"]
    taken = run("layers", "rename", "nuclei", "regions", "-p", proj)
    assert taken.returncode != 0 and "exists already" in taken.stderr and "Traceback" not in taken.stderr
    first = run("layers", "delete", "regions", "--yes", "-p", proj)
    assert first.returncode != 0 and "first layer" in first.stderr
    asked = subprocess.run([LABELLOOP, "layers", "delete", "nuclei", "-p", proj], input="n\n", capture_output=True,
                           text=True, timeout=120)
    assert asked.returncode == 1 and len(ok("layers", "list", "-p", proj, "--json")) == 2  # said no: kept
    gone = ok("layers", "delete", "nuclei", "--yes", "-p", proj, "--json")
    assert gone == {"layer": "nuclei", "annotations": 0, "models": 0}
    assert [r["name"] for r in ok("layers", "list", "-p", proj, "--json")] == ["regions"]
