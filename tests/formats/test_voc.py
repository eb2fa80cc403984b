"""Pascal VOC XML: round trips, layouts, attributes, scores, hostile and broken input, raccoon."""

from __future__ import annotations

from pathlib import Path

import pytest

from factories import assert_same_dataset, make_dataset
from helpers import shared_dataset
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format


def _voc():
    return get_format("voc")


def boxes_only(dataset: DatasetRecord) -> DatasetRecord:
    """The dataset as VOC can hold it: every shape replaced by its bounding box."""
    images = [ImageRecord(i.file_name, i.width, i.height, i.path, i.split, annotations=[
        AnnotationRecord(a.label, a.bbox, score=a.score, source=a.source, review_state=a.review_state,
                         attributes=dict(a.attributes)) for a in i.annotations]) for i in dataset.images]
    return DatasetRecord(labels=list(dataset.labels), images=images)


def _voc_folder(tmp_path: Path, text: str, name: str = "a.xml") -> Path:
    """A VOC folder with one annotation file holding ``text`` as is."""
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Annotations" / name).write_text(text)
    return root


def _doc(body: str, prolog: str = "") -> str:
    return f"{prolog}<annotation>{body}</annotation>"


OBJECT = "<object><name>cat</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>30</xmax><ymax>40</ymax>" \
         "</bndbox></object>"


def test_round_trip_is_lossless_for_boxes_scores_and_splits(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("box",), with_proposals=True, n_images=5)
    for image, split in zip(original.images, ["train", "val", "test", "train", None], strict=True):
        image.split = split
    original.labels.append("unused")
    files = _voc().write(original, tmp_path / "out", WriteOptions())
    assert len(files) == 5 and all(f.parent.name == "Annotations" for f in files)
    back = _voc().read(tmp_path / "out", ReadOptions())
    assert_same_dataset(original, back, tol=1e-9)
    assert back.labels == original.labels
    assert [i.split for i in back.images] == [i.split for i in original.images]
    scored = sum(a.score is not None for i in back.images for a in i.annotations)
    assert scored == sum(a.score is not None for i in original.images for a in i.annotations) > 0


def test_polygons_and_masks_export_as_their_boxes(tmp_path: Path) -> None:
    original = make_dataset(tmp_path / "src", kinds=("polygon", "mask", "box"), n_images=4, seed=2)
    _voc().write(original, tmp_path / "out", WriteOptions(images="none"))
    back = _voc().read(tmp_path / "out", ReadOptions())
    assert all(a.kind == "box" for i in back.images for a in i.annotations)
    assert_same_dataset(boxes_only(original), back)


def test_attributes_and_float_boxes_survive(tmp_path: Path) -> None:
    attrs = {"difficult": True, "truncated": False, "occluded": True, "pose": "Left", "colour": "red"}
    ds = DatasetRecord(labels=["cat"], images=[ImageRecord("sub/a.jpg", 64, 48, annotations=[
        AnnotationRecord("cat", (0.5, 1.25, 33.0, 40.123456789012), attributes=attrs)])])
    _voc().write(ds, tmp_path / "out", WriteOptions(images="none"))
    text = (tmp_path / "out" / "Annotations" / "sub" / "a.xml").read_text()
    assert "<xmax>33</xmax>" in text and "<ymax>40.123456789012</ymax>" in text
    ann = _voc().read(tmp_path / "out", ReadOptions()).images[0].annotations[0]
    assert ann.bbox == (0.5, 1.25, 33.0, 40.123456789012)
    assert ann.attributes == attrs


def test_reads_flat_folder_with_images_beside(tmp_path: Path) -> None:
    make_dataset(tmp_path / "flat", n_images=1)
    (tmp_path / "flat" / "img_000.xml").write_text(
        f"<annotation><filename>img_000.png</filename>{OBJECT}</annotation>")
    assert detect_format(tmp_path / "flat").name == "voc"
    image = _voc().read(tmp_path / "flat", ReadOptions()).images[0]
    assert image.path == tmp_path / "flat" / "img_000.png"
    assert (image.width, image.height) == (128, 96)  # no <size>: read from the image header


BAD = [
    ("truncated", f"<annotation><filename>a.jpg</filename>{OBJECT}", "invalid XML at line 1", "line 1"),
    ("billion laughs", _doc("<filename>&lol2;</filename>", '<?xml version="1.0"?>\n<!DOCTYPE lolz '
                            '[<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>\n'),
     "refused XML entity", "DOCTYPE"),
    ("external entity", _doc("<filename>&xxe;</filename>", '<!DOCTYPE a [<!ENTITY xxe SYSTEM '
                             '"file:///etc/passwd">]>'), "refused XML entity", "DOCTYPE"),
    ("filename traversal", _doc(f"<filename>../../etc/passwd</filename>{OBJECT}"), "unsafe image file name",
     "<filename>"),
    ("absolute filename", _doc(f"<filename>/etc/passwd</filename>{OBJECT}"), "unsafe image file name",
     "<filename>"),
    ("path traversal", _doc(f"<filename>a.jpg</filename><path>imgs/../../../x.jpg</path>{OBJECT}"),
     "unsafe image path", "<path>"),
    ("zero-area box", _doc("<filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>5</xmin>"
                           "<ymin>5</ymin><xmax>5</xmax><ymax>9</ymax></bndbox></object>"),
     "zero or negative area", "object[0] 'cat'"),
    ("missing bndbox", _doc("<filename>a.jpg</filename><object><name>cat</name></object>"), "no <bndbox>",
     "object[0] 'cat'"),
    ("not a number", _doc("<filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>x</xmin>"
                          "<ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox></object>"),
     "expected a number in <xmin>", "object[0] 'cat'"),
    ("bad score", _doc("<filename>a.jpg</filename><object><name>cat</name><bndbox><xmin>1</xmin>"
                       "<ymin>5</ymin><xmax>9</xmax><ymax>9</ymax></bndbox><score>3</score></object>"),
     "score in \\[0, 1\\]", "object[0] 'cat'"),
]


@pytest.mark.parametrize(("case", "text", "message", "record"), BAD, ids=[b[0] for b in BAD])
def test_bad_xml_is_a_format_error_naming_file_and_record(tmp_path: Path, case: str, text: str, message: str,
                                                            record: str) -> None:
    root = _voc_folder(tmp_path, text)
    with pytest.raises(FormatError, match=message) as info:
        _voc().read(root, ReadOptions())
    assert info.value.file and info.value.file.endswith("a.xml")
    assert info.value.record == record


def test_skip_invalid_collects_bad_files_and_objects(tmp_path: Path) -> None:
    root = _voc_folder(tmp_path, _doc(f"<filename>a.jpg</filename>{OBJECT}<object><name>dog</name></object>"))
    (root / "Annotations" / "b.xml").write_text("<annotation><filename>../b.jpg</filename></annotation>")
    (root / "Annotations" / "c.xml").write_text('<!DOCTYPE a [<!ENTITY e "x">]><annotation/>')
    ds = _voc().read(root, ReadOptions(skip_invalid=True))
    assert [i.file_name for i in ds.images] == ["a.jpg"]
    assert [a.label for a in ds.images[0].annotations] == ["cat"]
    assert len(ds.skipped) == 3


def test_cvat_xml_is_not_voc(tmp_path: Path) -> None:
    (tmp_path / "annotations.xml").write_text("<annotations><version>1.1</version></annotations>")
    assert _voc().detect(tmp_path) == 0.0
    assert _voc().detect(tmp_path / "annotations.xml") == 0.0


@pytest.mark.datasets
def test_raccoon_reads_counts_and_round_trips(tmp_path: Path) -> None:
    raccoon = shared_dataset("raccoon")
    assert detect_format(raccoon).name == "voc"
    ds = _voc().read(raccoon, ReadOptions())
    assert (len(ds.images), sum(len(i.annotations) for i in ds.images)) == (200, 217)
    assert ds.labels == ["raccoon"] and not ds.skipped
    assert all(i.path is not None and i.width and i.height for i in ds.images)
    _voc().write(ds, tmp_path / "out", WriteOptions(images="link"))
    back = _voc().read(tmp_path / "out", ReadOptions())
    assert_same_dataset(ds, back, tol=1e-9)
    first = {i.file_name: i for i in back.images}["raccoon-1.jpg"]
    assert first.annotations[0].attributes == {"difficult": False, "truncated": False, "pose": "Unspecified"}


def _annots_layout(root: Path, *, dup: bool = False, images: str = "images") -> Path:
    """The tutorial layout: ``annots/*.xml`` beside ``images/*`` (no VOC folder names)."""
    make_dataset(root / images, n_images=2)
    (root / "annots").mkdir(parents=True)
    for i in range(2):
        (root / "annots" / f"img_{i:03d}.xml").write_text(
            f"<annotation><filename>img_{i:03d}.png</filename>{OBJECT}</annotation>")
    if dup:
        make_dataset(root / "backup", n_images=1)
    return root


def test_xml_files_are_found_by_content_and_images_by_name_anywhere(tmp_path: Path) -> None:
    for folder in ("images", "train/pics"):  # a usual folder name, and any other
        root = _annots_layout(tmp_path / folder.replace("/", "-"), images=folder)
        assert detect_format(root).name == "voc"
        for target in (root, root / "annots"):  # the dataset root, or its annotation folder
            ds = _voc().read(target, ReadOptions())
            assert sorted(i.file_name for i in ds.images) == ["img_000.png", "img_001.png"]
            assert all(i.path is not None and i.path.parent == root / folder for i in ds.images), target
            assert all((i.width, i.height) == (128, 96) for i in ds.images)


def test_an_image_in_two_folders_is_an_error_naming_both(tmp_path: Path) -> None:
    root = _annots_layout(tmp_path / "ds", dup=True, images="pics")
    with pytest.raises(FormatError) as err:
        _voc().read(root, ReadOptions())
    assert "img_000.png" in str(err.value) and "pics" in str(err.value) and "backup" in str(err.value)
    ds = _voc().read(root, ReadOptions(skip_invalid=True))  # --skip-invalid: that record, not the whole import
    assert [i.file_name for i in ds.images] == ["img_001.png"] and "img_000.png" in " ".join(ds.skipped)


def test_an_infinite_size_is_read_as_unknown_not_a_crash(tmp_path: Path) -> None:
    root = _voc_folder(tmp_path, _doc(f"<filename>a.jpg</filename><size><width>inf</width><height>1e999</height>"
                                      f"</size>{OBJECT}"))
    image = _voc().read(root, ReadOptions()).images[0]
    assert (image.width, image.height) == (None, None) and image.annotations[0].bbox == (1, 2, 30, 40)
