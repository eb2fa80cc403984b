"""CVAT for images 1.1 XML: lossless round trips, CVAT's mask RLE, proposals, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from factories import assert_same_dataset, make_dataset
from labelloop.core.geometry import mask_to_rle, rle_to_mask
from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord
from labelloop.errors import FormatError
from labelloop.formats import ReadOptions, WriteOptions, detect_format, get_format

CVAT = get_format("cvat")

HEADER = """<?xml version="1.0" encoding="utf-8"?>
<annotations><version>1.1</version>
<meta><task><labels><label><name>cat</name></label><label><name>dog</name></label></labels></task></meta>
"""


def _xml(tmp_path: Path, body: str, header: str = HEADER) -> Path:
    path = tmp_path / "annotations.xml"
    path.write_text(header + body + "\n</annotations>\n", encoding="utf-8")
    return path


def test_round_trip_keeps_boxes_polygons_masks_scores_and_sources(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "src", kinds=("box", "polygon", "mask"), with_proposals=True)
    CVAT.write(ds, tmp_path / "out", WriteOptions())
    back = CVAT.read(tmp_path / "out", ReadOptions())
    assert_same_dataset(ds, back)
    assert back.labels == ds.labels
    proposals = [(a.source, a.review_state) for i in back.images for a in i.annotations if a.score is not None]
    assert proposals and set(proposals) == {("model:1", "proposed")}
    assert all(i.path is not None and i.path.is_file() for i in back.images)
    # and again: export of the import is byte-identical
    CVAT.write(back, tmp_path / "again", WriteOptions(images="none"))
    assert (tmp_path / "again/annotations.xml").read_bytes() == (tmp_path / "out/annotations.xml").read_bytes()


def test_coordinates_keep_full_precision(tmp_path: Path) -> None:
    box = (10.123456789012, 20.987654321098, 70.5555555555555, 80.3333333333333)
    ds = DatasetRecord(labels=["cat"], images=[ImageRecord("a.png", 100, 90, annotations=[
        AnnotationRecord("cat", box, score=0.123456789, source="yolo:v8n-7", review_state="accepted")])])
    CVAT.write(ds, tmp_path, WriteOptions(images="none"))
    ann = CVAT.read(tmp_path, ReadOptions()).images[0].annotations[0]
    assert ann.bbox == box
    assert (ann.score, ann.source, ann.review_state) == (0.123456789, "yolo:v8n-7", "accepted")


def test_multi_ring_polygon_and_crowd_mask_round_trip(tmp_path: Path) -> None:
    rings = [[1.5, 1, 10, 1, 10, 8], [20, 20, 30, 20, 30, 30, 20, 30]]
    mask = np.zeros((40, 50), dtype=np.uint8)
    mask[5:9, 30:45] = 1
    anns = [AnnotationRecord("dog", (1.5, 1, 30, 30), polygons=rings),
            AnnotationRecord("cat", (30, 5, 45, 9), rle=mask_to_rle(mask), iscrowd=True,
                             attributes={"occluded": True, "color": "black"})]
    ds = DatasetRecord(labels=["cat", "dog"], images=[ImageRecord("x/a.png", 50, 40, annotations=anns,
                                                                   split="val")])
    CVAT.write(ds, tmp_path, WriteOptions(images="none"))
    back = CVAT.read(tmp_path, ReadOptions())
    assert_same_dataset(ds, back, mask_iou=1.0)
    got = {a.label: a for a in back.images[0].annotations}
    assert got["dog"].polygons == rings
    assert got["cat"].iscrowd and got["cat"].attributes == {"occluded": True, "color": "black"}
    assert back.images[0].split == "val"


def test_mask_rle_follows_cvat_layout(tmp_path: Path) -> None:
    # 3x2 crop at (left=2, top=1), row-major, starting with zeros: rows "011" and "110"
    path = _xml(tmp_path, '<image id="0" name="a.png" width="6" height="4">'
                '<mask label="cat" source="manual" occluded="0" rle="1, 4, 1" left="2" top="1" width="3" '
                'height="2" z_order="0"/></image>')
    ann = CVAT.read(path, ReadOptions()).images[0].annotations[0]
    expected = np.zeros((4, 6), dtype=np.uint8)
    expected[1, 3:5] = 1
    expected[2, 2:4] = 1
    assert np.array_equal(rle_to_mask(ann.rle), expected)
    assert ann.bbox == (2.0, 1.0, 5.0, 3.0)
    CVAT.write(CVAT.read(path, ReadOptions()), tmp_path / "out", WriteOptions(images="none"))
    assert 'rle="1, 4, 1" left="2" top="1" width="3" height="2"' in (tmp_path / "out/annotations.xml").read_text()


def test_reads_project_layout_rotation_ellipse_and_groups(tmp_path: Path) -> None:
    header = HEADER.replace("<task>", "<project><name>p</name>").replace("</task>", "</project>")
    path = _xml(tmp_path, '<image id="0" name="a.png" width="100" height="100" subset="Train">'
                '<box label="cat" xtl="10" ytl="10" xbr="30" ybr="20" rotation="90" occluded="1"/>'
                '<ellipse label="dog" cx="50" cy="50" rx="10" ry="5"/>'
                '<polygon label="dog" points="0,0;5,0;5,5" group_id="3" source="auto">'
                '<attribute name="score">0.5</attribute></polygon>'
                '<polygon label="dog" points="10,10;15,10;15,15" group_id="3" source="auto"/>'
                '<polyline label="dog" points="0,0;5,5"/></image>', header)
    ds = CVAT.read(path, ReadOptions())
    image = ds.images[0]
    assert image.split == "train" and ds.labels == ["cat", "dog"]
    box, ellipse, grouped = image.annotations
    assert box.bbox == pytest.approx((15, 5, 25, 25)) and box.attributes["source_rotation"] == 90.0
    assert box.attributes["occluded"] is True
    assert ellipse.bbox == pytest.approx((40, 45, 60, 55))
    assert len(grouped.polygons or []) == 2 and grouped.score == 0.5
    assert (grouped.source, grouped.review_state) == ("model", "proposed")
    assert any("polyline" in s for s in ds.skipped)


@pytest.mark.parametrize(("body", "reason"), [
    ('<image id="0" name="a.png" width="10" height="10"><box label="horse" xtl="1" ytl="1" xbr="5" ybr="5"/>'
     '</image>', "label 'horse' is not declared"),
    ('<image id="0" name="a.png" width="10" height="10"><box label="cat" xtl="1" ytl="1" xbr="1" ybr="5"/>'
     '</image>', "zero or negative area"),
    ('<image id="0" name="../../etc/passwd" width="10" height="10"></image>', "unsafe image file name"),
    ('<image id="0" name="a.png" width="10" height="10"><polygon label="cat" points="1,1;2"/></image>',
     "expected points"),
    ('<image id="0" name="a.png" width="10" height="10"><mask label="cat" rle="5, 5" left="0" top="0" '
     'width="3" height="3"/></image>', "expected 3x3"),
    ('<image id="0" name="a.png" width="10" height="10"><mask label="cat" rle="a,b" left="0" top="0" '
     'width="3" height="3"/></image>', "expected rle as comma-separated non-negative run lengths, got 'a,b'"),
    ('<image id="0" name="a.png" width="10" height="10"><box label="cat" xtl="1" ytl="1" xbr="5"/></image>',
     "<box> has no 'ybr' attribute"),
    ('<image id="0" name="a.png" width="10" height="10"><box label="cat" xtl="1" ytl="1" xbr="5" ybr="5" '
     'z_order="1.5"/></image>', "expected <box> 'z_order' as an integer, got '1.5'"),
    ('<image id="0" name="a.png" width="10" height="10"><box label="cat" xtl="one" ytl="1" xbr="5" ybr="5"/>'
     '</image>', "expected <box> 'xtl' as a number, got 'one'"),
    # refused before 37 GiB of pixels are allocated
    ('<image id="0" name="a.png" width="10" height="10"><mask label="cat" rle="5" left="0" top="0" '
     'width="200000" height="200000"/></image>', "mask 200000x200000 at 0,0 does not fit in the image 10x10"),
])
def test_bad_records_name_file_and_record_or_are_skipped(tmp_path: Path, body: str, reason: str) -> None:
    path = _xml(tmp_path, body + '<image id="1" name="ok.png" width="10" height="10">'
                '<box label="dog" xtl="1" ytl="1" xbr="5" ybr="5"/></image>')
    with pytest.raises(FormatError) as info:
        CVAT.read(path, ReadOptions())
    assert reason in str(info.value) and str(path) in str(info.value) and info.value.record
    ds = CVAT.read(path, ReadOptions(skip_invalid=True))
    assert len(ds.skipped) == 1 and reason in ds.skipped[0]
    assert [a.label for i in ds.images for a in i.annotations] == ["dog"]


def test_truncated_xml_is_a_format_error(tmp_path: Path) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(HEADER + '<image id="0" name="a.png" width="10" heig', encoding="utf-8")
    with pytest.raises(FormatError, match=r"invalid XML at line \d+ column \d+.*re-export"):
        CVAT.read(path, ReadOptions(skip_invalid=True))


def test_billion_laughs_is_refused(tmp_path: Path) -> None:
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    path = tmp_path / "annotations.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE annotations [<!ENTITY l0 "lol">{lol}]>'
                    '<annotations><version>1.1</version><meta/><image id="0" name="&l9;" width="1" height="1"/>'
                    '</annotations>', encoding="utf-8")
    with pytest.raises(FormatError, match="refused XML with a DTD"):
        CVAT.read(path, ReadOptions(skip_invalid=True))


def test_video_export_and_wrong_root_are_explained(tmp_path: Path) -> None:
    video = _xml(tmp_path, '<track id="0" label="cat"><box frame="0" xtl="1" ytl="1" xbr="2" ybr="2"/></track>')
    with pytest.raises(FormatError, match="CVAT for video"):
        CVAT.read(video, ReadOptions())
    voc = tmp_path / "voc.xml"
    voc.write_text("<annotation><object/></annotation>", encoding="utf-8")
    with pytest.raises(FormatError, match="expected an <annotations> root"):
        CVAT.read(voc, ReadOptions())


def test_detects_cvat_folder_and_file(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "src", n_images=2)
    CVAT.write(ds, tmp_path / "out", WriteOptions())
    assert detect_format(tmp_path / "out").name == "cvat"
    assert detect_format(tmp_path / "out/annotations.xml").name == "cvat"
