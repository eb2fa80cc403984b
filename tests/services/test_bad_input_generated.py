"""The generated part of the bad-input tier: a valid one-image dataset is written in each format by
labelloop itself, then one field (or line, or element) at a time is replaced by a value that cannot
be right -- the wrong type, out of range, not finite, missing, hostile XML. (A malformed declared
image size is not among them: the image file is the truth, and readers take the size from it.) Every import must be
refused with one line that names the file, and the project must be exactly as before."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image as PILImage
from sqlalchemy import func, select

from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import LabelloopError
from labelloop.formats import WriteOptions, get_format
from labelloop.services.importing import import_path
from labelloop.services.projects import new_project
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, Image, LabelClass

NAN, INF = float("nan"), float("inf")


def _dataset(root: Path) -> DatasetRecord:
    root.mkdir(parents=True, exist_ok=True)
    PILImage.new("RGB", (50, 40), (10, 200, 30)).save(root / "a.png")
    return DatasetRecord(labels=["cat"], images=[ImageRecord(
        file_name="a.png", width=50, height=40, path=root / "a.png",
        annotations=[AnnotationRecord(label="cat", bbox=(1, 1, 20, 20))])])


def _written(fmt: str, root: Path) -> Path:
    get_format(fmt).write(_dataset(root / "src"), root / fmt, WriteOptions())
    return root / fmt


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DROP:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DROP = object()

# ------------------------------------------------------------------ COCO (JSON paths)
_BOX = ("annotations", 0, "bbox")
COCO: list[tuple[tuple[Any, ...], Any]] = [
    *[(_BOX, v) for v in ("x", [1], [1, 2, 3], [None, 1, 2, 3], ["a", "b", "c", "d"], [1, 1, 0, 0], [1, 1, -5, 5],
                          [NAN, 1, 2, 2], [1, 1, INF, 2], {"x": 1}, True, [1e12, 1, 5, 5], _DROP)],
    *[(("annotations", 0, "category_id"), v) for v in (None, "zzz", [1], {"a": 1}, 99, True, _DROP)],
    *[(("annotations", 0, "image_id"), v) for v in (None, [1], 99, "x", {"id": 1}, _DROP)],
    *[(("annotations", 0, "segmentation"), v) for v in (
        "x", 5, [[1, 2]], [["a", "b", "c", "d", "e", "f"]], {"size": [1], "counts": "x"}, {"size": "x"},
        {"size": [40, 50], "counts": 5}, {"size": [40, 50], "counts": "!!"}, [[-1e9] * 6], [[1, 1, 2, 2, 3, 3]],
        {"size": [40, 50], "counts": [1, 2, 3]}, [[1, 1, 9, 1, NAN, 9]])],
    *[(("images", 0, "width"), v) for v in ("x", -5, 0, 10**12, [50], 49)],
    *[(("images", 0, "height"), v) for v in ("x", -5, 0, 10**12, 41)],
    *[(("images", 0, "file_name"), v) for v in (5, "", "../../etc/passwd", "/etc/passwd", None, "missing.png",
                                                _DROP)],
    *[(("images", 0, "id"), v) for v in ([1], {"a": 1}, None, True)],
    *[(("categories", 0, "name"), v) for v in ("", None, "ca\nt", "\x1b[1m", "x" * 500, _DROP)],
    *[(("categories", 0, "id"), v) for v in (None, [1], _DROP)],
    *[((key,), v) for key in ("images", "categories", "annotations") for v in (5, "x", {"a": 1})],
    *[(("annotations", 0), v) for v in (5, "x", None)],
]

# ------------------------------------------------------------------ Label Studio (JSON paths)
_RES = (0, "annotations", 0, "result", 0)
LABEL_STUDIO: list[tuple[tuple[Any, ...], Any]] = [
    *[((*_RES, "value", k), v) for k in ("x", "y", "width", "height") for v in ("x", NAN, -50, 500, None)],
    *[((*_RES, "value", "rectanglelabels"), v) for v in ("cat", [], [5], [None], ["ca\nt"])],
    *[((*_RES, "original_width"), v) for v in ("x", -1, 0, 10**12)],
    *[((*_RES, "type"), v) for v in (5, None)],
    *[((0, "data", "image"), v) for v in (5, None, "", "/data/local-files/?d=../../../etc/passwd", "missing.png")],
    *[((0, "annotations"), v) for v in (5, "x", [5])],
    *[((0, "annotations", 0, "result"), v) for v in (5, "x", [5], [None])],
    *[((0,), v) for v in (5, "x", None)],
]

# ------------------------------------------------------------------ Pascal VOC and CVAT (XML text)
_LAUGHS = ('<?xml version="1.0"?><!DOCTYPE a [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
           '<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>')
_XXE = '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
VOC: list[tuple[str, str]] = [
    *[(rf"<{t}>\d+</{t}>", f"<{t}>{v}</{t}>") for t in ("xmin", "ymin", "xmax", "ymax")
      for v in ("x", "-500", "5000", "nan", "inf", "")],
    (r"<xmax>20</xmax>", "<xmax>0</xmax>"),
    (r"<name>cat</name>", "<name></name>"), (r"<name>cat</name>", "<name>c&#10;at</name>"),
    (r"<name>cat</name>", "<name>&#27;[31mred</name>"), (r"<name>cat</name>", ""),
    (r"<bndbox>", "<bndboxx>"), (r"<filename>a.png</filename>", "<filename>../../etc/passwd</filename>"),
    (r"<filename>a.png</filename>", "<filename>missing.png</filename>"),
    (r"<height>40</height>", "<height>999999999999</height>"),
    (r"</annotation>", ""), (r"^<annotation>", _LAUGHS + "<annotation>&c;"),
    (r"^<annotation>", _XXE + "<annotation><note>&x;</note>"),
]
CVAT: list[tuple[str, str]] = [
    *[(rf'{a}="\d+"', f'{a}="{v}"') for a in ("xtl", "ytl", "xbr", "ybr") for v in ("x", "-500", "5000", "nan", "")],
    (r'xbr="20"', 'xbr="1"'), (r'label="cat"', 'label=""'), (r'label="cat"', 'label="c&#10;at"'),
    (r'label="cat"', 'label="nope"'),
    (r'height="40"', 'height="999999999999"'), (r'name="a.png"', 'name="../../etc/passwd"'),
    (r'name="a.png"', 'name="missing.png"'), (r"</annotations>", ""),
    (r"^<\?xml[^>]*\?>", _LAUGHS), (r"^<\?xml[^>]*\?>\s*<annotations>", _XXE + "<annotations>&x;"),
    (r'<box [^>]*/>', '<polygon label="cat" points="1,1;x,2;3,3" />'),
    (r'<box [^>]*/>', '<polygon label="cat" points="1,1;2;3,3" />'),
]
# ------------------------------------------------------------------ YOLO (label lines, data.yaml)
YOLO_LINES = ["0 0.5 0.5", "x 0.5 0.5 0.2 0.2", "0 1.5 0.5 0.2 0.2", "0 0.5 0.5 -0.2 0.2", "9 0.5 0.5 0.2 0.2",
              "0 nan 0.5 0.2 0.2", "-1 0.5 0.5 0.2 0.2", "0 inf 0.5 0.2 0.2", "0 0.5 0.5 0 0", "0 0.5 0.5 0.2 0.2 1.3",
              "0.5 0.5 0.5 0.2 0.2", "0 0.1 0.1 0.2 0.2 x 0.3 0.4 0.5", "\x00\x01\x02"]
YOLO_YAML = ["names: 5\ntrain: images/train\n", "names: {a: cat}\ntrain: images/train\n",
             "nc: 3\nnames: [cat]\ntrain: images/train\n", "[1, 2]\n", "train: /etc\nnames: [cat]\n",
             "train: ../../outside\nnames: [cat]\n", "names: ['']\ntrain: images/train\n",
             "names: [\"ca\\nt\"]\ntrain: images/train\n", "names: [[cat]]\ntrain: images/train\n",
             "a: &a [x, x]\nb: &b [*a, *a]\nnames: *b\ntrain: images/train\n", "names: [cat\ntrain: [\n"]


def _json_case(fmt: str, file: str, path: tuple[Any, ...], value: Any) -> Callable[[Path], tuple[Path, dict[str, Any]]]:
    """labelloop's own ``fmt`` export with the JSON value at ``path`` in ``file`` replaced by ``value``."""
    def make(root: Path) -> tuple[Path, dict[str, Any]]:
        target = _written(fmt, root) / file
        target.write_text(json.dumps(_set(json.loads(target.read_text()), path, value)))
        return target, {"format": fmt}
    return make


def _xml_case(fmt: str, file: str, pattern: str, replacement: str) -> Callable[[Path], tuple[Path, dict[str, Any]]]:
    def make(root: Path) -> tuple[Path, dict[str, Any]]:
        folder = _written(fmt, root)
        path = folder / file
        text = path.read_text().lstrip()
        changed = re.sub(pattern, replacement.replace("\\", "\\\\"), text, count=1, flags=re.M)
        assert changed != text, f"{pattern!r} not found in {file}"
        path.write_text(changed)
        return (folder if fmt == "voc" else path), {"format": fmt}
    return make


def _yolo_case(line: str | None, yaml_text: str | None) -> Callable[[Path], tuple[Path, dict[str, Any]]]:
    def make(root: Path) -> tuple[Path, dict[str, Any]]:
        folder = _written("yolo", root)
        if line is not None:
            (folder / "labels" / "train" / "a.txt").write_text(line + "\n")
        if yaml_text is not None:
            (folder / "data.yaml").write_text(yaml_text)
        return folder, {"format": "yolo"}
    return make


CASES: dict[str, Callable[[Path], tuple[Path, dict[str, Any]]]] = {
    **{f"coco {'.'.join(map(str, p))}={v!r:.30}": _json_case("coco", "annotations.json", p, v) for p, v in COCO},
    **{f"labelstudio {'.'.join(map(str, p))}={v!r:.30}": _json_case("labelstudio", "tasks.json", p, v)
       for p, v in LABEL_STUDIO},
    **{f"voc {i}: {r[:30]!r}": _xml_case("voc", "Annotations/a.xml", p, r) for i, (p, r) in enumerate(VOC)},
    **{f"cvat {i}: {r[:30]!r}": _xml_case("cvat", "annotations.xml", p, r) for i, (p, r) in enumerate(CVAT)},
    **{f"yolo line {line[:24]!r}": _yolo_case(line, None) for line in YOLO_LINES},
    **{f"yolo data.yaml {text[:24]!r}": _yolo_case(None, text) for text in YOLO_YAML},
}


def _counts(ctx: ProjectContext) -> tuple[int, ...]:
    with ctx.store.session() as s:
        return tuple(s.scalar(select(func.count()).select_from(t).where(t.project_id == ctx.id)) or 0
                     for t in (Image, Annotation, LabelClass))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One project for the whole tier, holding one image with one box: every case must leave it so."""
    root = tmp_path_factory.mktemp("bad-input")
    ctx = new_project(root / "project", labels=["dog"])
    seed = _written("coco", root / "seed")
    import_path(ctx, seed / "annotations.json")
    yield ctx
    ctx.close()


def test_the_tier_is_big_enough() -> None:
    assert len(CASES) >= 150, len(CASES)


@pytest.mark.parametrize("case", list(CASES))
def test_refused_cleanly_and_nothing_changes(tmp_path: Path, project: ProjectContext, case: str) -> None:
    before = _counts(project)
    source, options = CASES[case](tmp_path)
    with pytest.raises(LabelloopError) as caught:
        import_path(project, source, **options)
    text = str(caught.value)
    assert "\n" not in text and "Traceback" not in text, text
    assert not text.startswith("internal error"), text
    assert any(part in text for part in (source.name, source.parent.name, "a.png", "a.txt", "data.yaml",
                                         "a.xml", "annotations.xml", "[image]")), text  # names the file or image
    assert _counts(project) == before
