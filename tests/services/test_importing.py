"""Import is one transaction: bad input names the file and record and changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from factories import assert_same_dataset, make_dataset
from labelloop.errors import FormatError, InvalidInputError, LabelloopError
from labelloop.formats import WriteOptions, get_format
from labelloop.services.exporting import project_dataset
from labelloop.services.importing import import_path
from labelloop.services.projects import new_project
from labelloop.store.tables import Annotation
from labelloop.store.tables import Image as ImageRow


def _counts(ctx):
    with ctx.store.session() as s:
        return (s.scalar(select(func.count()).select_from(ImageRow)),
                s.scalar(select(func.count()).select_from(Annotation)))


def _coco_dir(tmp_path: Path, **kw) -> tuple[Path, dict]:
    ds = make_dataset(tmp_path / "src", **kw)
    get_format("coco").write(ds, tmp_path / "coco", WriteOptions())
    doc = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    return tmp_path / "coco", doc


def test_import_stores_images_by_content_and_annotations(tmp_path, database):
    ctx = new_project(tmp_path / "p", task="segment")
    src = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"), with_proposals=True)
    get_format("coco").write(src, tmp_path / "coco", WriteOptions())
    report = import_path(ctx, tmp_path / "coco")
    assert report.format == "coco" and report.images_added == 6
    assert report.annotations_added == sum(len(i.annotations) for i in src.images)
    stored = list((ctx.root / "images").rglob("*.png"))
    assert len(stored) == 6 and all(len(p.stem) == 64 for p in stored)  # sha256 names
    back = project_dataset(ctx, include_proposals=True)
    assert_same_dataset(src, back)
    ctx.close()


def test_reimport_adds_nothing_twice(tmp_path, project):
    coco, _ = _coco_dir(tmp_path)
    first = import_path(project, coco)
    again = import_path(project, coco)
    assert again.images_added == 0 and again.images_matched == first.images_added
    assert again.annotations_added == 0


def _write(coco: Path, doc: dict) -> None:
    (coco / "annotations.json").write_text(json.dumps(doc))


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d["annotations"][0].update(category_id=999), "unknown category_id 999"),
    (lambda d: d["annotations"][1].update(bbox=[5, 5, 0, 10]), "zero or negative area"),
    (lambda d: d["annotations"][2].update(bbox=[500, 500, 10, 10]), "outside"),
    (lambda d: d["images"][0].update(file_name="../../etc/passwd"), "unsafe image file name"),
    (lambda d: d["images"][1].update(file_name=d["images"][2]["file_name"]), "duplicate file name"),
    (lambda d: d["images"][3].update(file_name="missing.png"), "image file not found"),
    (lambda d: d["annotations"][0].update(review_state="hacked"), "unknown review state 'hacked'"),
    (lambda d: d["images"][1].update(id=d["images"][0]["id"]), "duplicate image id"),
    (lambda d: d["annotations"][0].update(bbox=[str(v) for v in d["annotations"][0]["bbox"]]), "as 4 numbers"),
    (lambda d: d.pop("images"), "expected COCO 'images'"),
])
def test_bad_record_fails_whole_import_and_names_it(tmp_path, project, breakage, message):
    coco, doc = _coco_dir(tmp_path)
    breakage(doc)
    _write(coco, doc)
    with pytest.raises(LabelloopError, match=message) as err:
        import_path(project, coco)
    assert "annotations.json" in str(err.value) or ".png" in str(err.value)
    assert _counts(project) == (0, 0)
    assert not list((project.root / "images").rglob("*.png"))  # copied files removed again


def test_skip_invalid_imports_the_rest_and_reports(tmp_path, project):
    coco, doc = _coco_dir(tmp_path)
    doc["annotations"][0]["category_id"] = 999
    doc["images"][3]["file_name"] = "missing.png"
    _write(coco, doc)
    report = import_path(project, coco, skip_invalid=True)
    assert len(report.skipped) == 2
    assert any("unknown category_id" in s for s in report.skipped)
    assert any("missing.png" in s for s in report.skipped)
    assert report.images_added == 5


def test_a_model_source_links_only_to_a_model_of_this_project(tmp_path, project):
    coco, doc = _coco_dir(tmp_path)
    doc["annotations"][0].update(source="model:999", score=0.9, review_state="proposed")
    _write(coco, doc)
    import_path(project, coco)
    with project.store.session() as s:
        row = s.scalars(select(Annotation).where(Annotation.source == "model:999")).one()
    assert row.model_id is None and row.review_state == "proposed"  # the provenance text stays, no dangling link


def test_truncated_json_is_a_one_line_error(tmp_path, project):
    coco, _ = _coco_dir(tmp_path)
    text = (coco / "annotations.json").read_text()
    (coco / "annotations.json").write_text(text[: len(text) // 2])
    with pytest.raises(FormatError, match=r"invalid JSON at line \d+"):
        import_path(project, coco / "annotations.json")
    assert _counts(project) == (0, 0)


def test_undecodable_and_bomb_images_are_refused(tmp_path, project, monkeypatch):
    coco, _ = _coco_dir(tmp_path)
    (coco / "images" / "img_000.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(InvalidInputError, match="img_000.png"):
        import_path(project, coco)
    coco2, _ = _coco_dir(tmp_path / "b")
    Image.new("L", (4000, 4000)).save(coco2 / "images" / "img_001.png")
    monkeypatch.setenv("LABELLOOP_MAX_IMAGE_PIXELS", "1000000")
    from labelloop.settings import get_settings

    get_settings.cache_clear()
    with pytest.raises(InvalidInputError, match="over the limit"):
        import_path(project, coco2)
    assert _counts(project) == (0, 0)


def test_link_references_images_in_place(tmp_path, project):
    coco, _ = _coco_dir(tmp_path)
    import_path(project, coco, link=True)
    assert not list((project.root / "images").rglob("*.png"))
    ds = project_dataset(project)
    assert all(img.path and img.path.is_relative_to(coco) for img in ds.images)


def test_missing_images_allowed_when_asked(tmp_path, project):
    coco, _doc = _coco_dir(tmp_path)
    for p in (coco / "images").iterdir():
        p.unlink()
    report = import_path(project, coco, allow_missing_images=True)
    assert report.images_added == 6


def test_a_dataset_without_images_is_an_error_not_an_empty_success(tmp_path, project):
    coco, doc = _coco_dir(tmp_path)
    _write(coco, {**doc, "images": [], "annotations": []})
    with pytest.raises(FormatError, match="no images found in this coco dataset, so nothing was imported") as err:
        import_path(project, coco)
    assert "check the path and the format" in str(err.value)
    _write(coco, {**doc, "images": [{"id": 1}], "annotations": []})  # every image invalid, skipped
    with pytest.raises(FormatError, match=r"\(1 record\(s\) skipped as invalid\)"):
        import_path(project, coco, skip_invalid=True)
    assert _counts(project) == (0, 0)


def test_class_names_with_stray_spaces_join_the_class_they_name(tmp_path, project):
    from labelloop.services.labels import list_labels

    coco, doc = _coco_dir(tmp_path)
    first = import_path(project, coco)
    names = [c["name"] for c in list_labels(project)]
    for cat in doc["categories"]:
        cat["name"] = f"  {cat['name']} "
    for img in doc["images"]:  # the same pictures under other names: new images, the same classes
        old = coco / "images" / img["file_name"]
        img["file_name"] = "again-" + img["file_name"]
        (coco / "images" / img["file_name"]).write_bytes(old.read_bytes())
    _write(coco, doc)
    again = import_path(project, coco)
    assert again.labels_added == [] and [c["name"] for c in list_labels(project)] == names
    assert again.annotations_added == first.annotations_added
