"""Store round trips: import F, export F, import again gives the same annotations."""

import pytest

from factories import assert_same_dataset, make_dataset
from labelloop.errors import ConfigError, InvalidInputError
from labelloop.formats import WriteOptions, get_format
from labelloop.services.exporting import export_project, project_dataset
from labelloop.services.importing import import_path
from labelloop.services.projects import new_project


def test_export_excludes_proposals_unless_asked(tmp_path, project):
    ds = make_dataset(tmp_path / "src", with_proposals=True)
    get_format("coco").write(ds, tmp_path / "coco", WriteOptions())
    import_path(project, tmp_path / "coco")
    plain = export_project(project, tmp_path / "out1", format="coco")
    full = export_project(project, tmp_path / "out2", format="coco", include_proposals=True)
    human = sum(1 for i in ds.images for a in i.annotations if a.review_state is None)
    assert plain.annotations == human
    assert full.annotations == sum(len(i.annotations) for i in ds.images)
    assert (tmp_path / "out1" / "images" / "img_000.png").exists()
    bare = export_project(project, tmp_path / "out3", format="coco", images="none")
    assert bare.files and not (tmp_path / "out3" / "images").exists()


def test_store_round_trip_through_coco(tmp_path, database):
    ds = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"), with_proposals=True)
    get_format("coco").write(ds, tmp_path / "coco", WriteOptions())
    a = new_project(tmp_path / "a", task="segment")
    import_path(a, tmp_path / "coco")
    export_project(a, tmp_path / "exported", format="coco", include_proposals=True)
    b = new_project(tmp_path / "b", task="segment")
    import_path(b, tmp_path / "exported")
    assert_same_dataset(project_dataset(a, include_proposals=True), project_dataset(b, include_proposals=True))
    a.close()
    b.close()


def test_export_errors(tmp_path, project):
    with pytest.raises(ConfigError, match="unknown format"):
        export_project(project, tmp_path / "o", format="pdf")
    with pytest.raises(InvalidInputError, match="split"):
        export_project(project, tmp_path / "o", format="coco", split="holdout")
    (tmp_path / "taken.json").write_text("{}")
    with pytest.raises(InvalidInputError, match="is a file, and an export is a folder"):
        export_project(project, tmp_path / "taken.json", format="coco")
    assert (tmp_path / "taken.json").read_text() == "{}"
    with pytest.raises(InvalidInputError, match="cannot write the export"):  # a file where a folder must go
        export_project(project, tmp_path / "taken.json" / "out", format="coco")
    for inside in (project.root, project.root / "images", project.root / "models" / "x"):
        with pytest.raises(InvalidInputError, match="is the project folder or one of its own") as err:
            export_project(project, inside, format="yolo")
        assert "export to a new folder" in (err.value.hint or "")
    assert not (project.root / "labels").exists() and not (project.root / "images" / "labels").exists()
    assert export_project(project, project.root / "exports" / "coco", format="coco").format == "coco"  # a new one


def test_an_image_gone_from_disk_is_reported_not_a_failed_export(tmp_path, project):
    ds = make_dataset(tmp_path / "src")
    get_format("coco").write(ds, tmp_path / "coco", WriteOptions())
    import_path(project, tmp_path / "coco")
    gone = project_dataset(project).images[1]
    gone.path.unlink()
    report = export_project(project, tmp_path / "out", format="coco")
    assert report.missing_images == [gone.file_name]
    assert report.images == len(ds.images)  # every image's annotations are exported
    copied = {p.name for p in (tmp_path / "out" / "images").iterdir()}
    assert gone.file_name not in copied and len(copied) == len(ds.images) - 1
    again = new_project(tmp_path / "again")
    import_path(again, tmp_path / "out" / "annotations.json", skip_invalid=True)
    assert len(project_dataset(again).images) == len(ds.images) - 1  # the rest imports cleanly
    again.close()
