"""Hostile and broken imports, each refused at its root with one clear line that names the file (and
the record where there is one), and the project unchanged afterwards: resource bombs (YAML aliases,
giant masks, giant declared images, deep JSON), data that would poison the project (garbage RLE,
polygons outside the image or without area, ids that are not ids, class names with control
characters), and structure a format does not allow."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from labelloop.errors import LabelloopError
from labelloop.services.importing import import_path
from labelloop.services.projects import new_project
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass

W, H = 50, 40


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (W, H), (90, 120, 150)).save(path)


def _coco(root: Path, annotation: dict | None = None, *, image: dict | None = None,
          categories: list | None = None) -> Path:
    _png(root / "a.png")
    doc = {"images": [image or {"id": 1, "file_name": "a.png", "width": W, "height": H}],
           "categories": categories or [{"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5], **(annotation or {})}]}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root / "annotations.json"


def _labelme(root: Path, *, mask: str, width: int = W, height: int = H) -> Path:
    _png(root / "a.png")
    shape = {"label": "cat", "points": [[1, 1], [5, 5]], "shape_type": "mask", "mask": mask, "group_id": None,
             "flags": {}}
    (root / "a.json").write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": [shape], "imagePath": "a.png",
                                             "imageData": None, "imageHeight": height, "imageWidth": width}))
    return root / "a.json"


def _png_b64() -> str:
    buf = io.BytesIO()
    PILImage.new("L", (4, 4), 255).save(buf, "PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _yolo(root: Path, yaml_text: str) -> Path:
    _png(root / "images" / "a.png")
    (root / "labels").mkdir(parents=True)
    (root / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(yaml_text)
    return root


def _alias_bomb() -> str:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        lines.append(f"{chr(97 + i)}: &{chr(97 + i)} [*{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, "
                     f"*{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}, *{chr(96 + i)}]")
    return "\n".join(lines) + "\ntrain: images\nnames: [*j]\n"


def _deep_json(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / "annotations.json").write_text("[" * 200_000 + "]" * 200_000)
    return root / "annotations.json"


Case = Callable[[Path], Path]
CASES: dict[str, tuple[Case, str, dict]] = {
    # resource bombs
    "yaml alias bomb": (lambda r: _yolo(r, _alias_bomb()), "aliases", {"format": "yolo"}),
    "giant rle size": (lambda r: _coco(r, {"segmentation": {"size": [60000, 60000], "counts": [3600000000]}},
                                       image={"id": 1, "file_name": "a.png"}), "over the limit", {}),
    "giant labelme mask": (lambda r: _labelme(r, mask=_png_b64(), width=200_000, height=200_000),
                           "over the limit", {"format": "labelme"}),
    "deep json": (_deep_json, "nested too deeply", {"format": "coco"}),
    "giant declared image": (lambda r: _missing_image(r, 10**12), "declared size", {"allow_missing_images": True}),
    # data that would poison the project
    "garbage rle counts": (lambda r: _coco(r, {"segmentation": {"size": [H, W], "counts": "garbage!!"}}),
                           "RLE", {}),
    "rle runs short": (lambda r: _coco(r, {"segmentation": {"size": [H, W], "counts": [10, 5]}}),
                       "runs cover 15 pixels", {}),
    "polygon outside": (lambda r: _coco(r, {"segmentation": [[-5000, -5000, 9000, -5000, 9000, 9000]]}),
                        "reaches outside", {}),
    "polygon without area": (lambda r: _coco(r, {"segmentation": [[1, 1, 3, 3, 5, 5]]}), "encloses no area", {}),
    "image id a list": (lambda r: _coco(r, image={"id": [1], "file_name": "a.png", "width": W, "height": H}),
                        "image id", {}),
    "category id an object": (lambda r: _coco(r, categories=[{"id": {"x": 1}, "name": "cat"}]),
                              "category needs an id", {}),
    "annotation image id a list": (lambda r: _coco(r, {"image_id": [1]}), "unknown image_id", {}),
    "class name newline": (lambda r: _coco(r, categories=[{"id": 1, "name": "ca\nt"}]), "U+000A", {}),
    "class name ansi escape": (lambda r: _coco(r, categories=[{"id": 1, "name": "\x1b[31mred"}]), "U+001B", {}),
    "class name rtl override": (lambda r: _coco(r, categories=[{"id": 1, "name": "tac\u202egnp"}]), "U+202E", {}),
    "class name nul": (lambda r: _coco(r, categories=[{"id": 1, "name": "c\x00t"}]), "U+0000", {}),
    "class name of a megabyte": (lambda r: _coco(r, categories=[{"id": 1, "name": "x" * 1_000_000}]),
                                 "over the limit of 200", {}),
    # structure the format does not allow
    "yolo names not text": (lambda r: _yolo(r, "train: images\nnames: [[a, b]]\n"), "plain text",
                            {"format": "yolo"}),
    "via regions a number": (lambda r: _via(r, 5), "expected a list", {"format": "via"}),
    "labelme mask not a png": (lambda r: _labelme(r, mask=base64.b64encode(b"not a png").decode()),
                               "not a base64 PNG", {"format": "labelme"}),
}


def _missing_image(root: Path, side: int) -> Path:
    root.mkdir(parents=True)
    doc = {"images": [{"id": 1, "file_name": "gone.png", "width": side, "height": side}],
           "categories": [{"id": 1, "name": "cat"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}]}
    (root / "annotations.json").write_text(json.dumps(doc))
    return root / "annotations.json"


def _via(root: Path, regions: object) -> Path:
    _png(root / "a.png")
    (root / "via_region_data.json").write_text(json.dumps({"a.png1": {"filename": "a.png", "size": 1,
                                                                      "regions": regions, "file_attributes": {}}}))
    return root / "via_region_data.json"


def _counts(ctx: ProjectContext) -> tuple[int, int, int]:
    with ctx.store.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t).where(t.project_id == ctx.id)) or 0
                     for t in (Image, Annotation, LabelClass))  # type: ignore[return-value]


@pytest.fixture
def ctx(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A project that already holds one image with one box (what must survive every bad import)."""
    project = new_project(tmp_path / "project", labels=["dog"])
    import_path(project, _coco(tmp_path / "seed", categories=[{"id": 1, "name": "dog"}]))
    yield project
    project.close()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_clear_error_and_changes_nothing(tmp_path: Path, ctx: ProjectContext, case: str) -> None:
    make, expected, options = CASES[case]
    before = _counts(ctx)
    source = make(tmp_path / "bad")
    with pytest.raises(LabelloopError) as caught:
        import_path(ctx, source, **options)
    text = str(caught.value)
    assert expected in text, text
    assert "\n" not in text.replace("ca\nt", "") and "Traceback" not in text  # one line
    named = getattr(caught.value, "file", None) or text
    assert source.name in named or source.parent.name in named or "a.png" in text or "gone.png" in text, text
    assert _counts(ctx) == before == (1, 1, 1)


BOMBS = ["yaml alias bomb", "giant rle size", "giant labelme mask", "deep json", "giant declared image"]


@pytest.mark.parametrize("case", BOMBS)
def test_bombs_fail_cleanly_under_a_memory_limit(tmp_path: Path, case: str) -> None:
    """The bombs again, through `labelloop import` in a process limited to 2 GiB of address space: a
    bomb that got through would fail this test (MemoryError, a kill), not exhaust the machine."""
    import os
    import resource
    import subprocess
    import sys

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    make, expected, options = CASES[case]
    new_project(tmp_path / "p", labels=["cat"]).close()
    source = make(tmp_path / "bad")
    flags = (["--format", options["format"]] if "format" in options else []) + \
        (["--allow-missing-images"] if options.get("allow_missing_images") else [])
    labelloop = str(Path(sys.executable).parent / "labelloop")
    r = subprocess.run([labelloop, "import", str(source), "-p", str(tmp_path / "p"), *flags], capture_output=True,
                       text=True, timeout=120, preexec_fn=limit, env={**os.environ, "LABELLOOP_DEBUG": ""})
    assert r.returncode == 1, (r.returncode, r.stderr[-1000:])
    assert expected in r.stderr and "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr


def test_a_link_out_of_the_dataset_is_refused_unless_followed(tmp_path: Path, ctx: ProjectContext) -> None:
    _png(tmp_path / "outside" / "secret.png")
    ds = tmp_path / "data" / "sets" / "ds"  # the file's folder and the one above count as the dataset
    source = _coco(ds)
    (ds / "a.png").unlink()
    (ds / "a.png").symlink_to(tmp_path / "outside" / "secret.png")
    before = _counts(ctx)
    with pytest.raises(LabelloopError, match="a link to .*secret.png, outside the dataset") as caught:
        import_path(ctx, source)
    assert "--follow-links" in (caught.value.hint or "") and _counts(ctx) == before
    assert import_path(ctx, source, follow_links=True).annotations_added == 1  # trusted by the user: imported
    inside = _coco(tmp_path / "ds2")  # a link that stays inside the dataset is fine
    (tmp_path / "ds2" / "real.png").write_bytes((tmp_path / "ds2" / "a.png").read_bytes())
    (tmp_path / "ds2" / "a.png").unlink()
    (tmp_path / "ds2" / "a.png").symlink_to(tmp_path / "ds2" / "real.png")
    assert import_path(ctx, inside).images_matched == 1  # same pixels as before: matched, not refused
