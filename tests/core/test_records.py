import math

import pytest

from labelloop.core.records import AnnotationRecord, DatasetRecord, ImageRecord


@pytest.mark.parametrize("bbox", [(10, 10, 10, 20), (5, 5, 4, 9), (0, 0, math.nan, 3), (1, 2, 3)])
def test_bad_boxes_are_refused_with_what_was_expected(bbox):
    with pytest.raises(ValueError, match="box|expected"):
        AnnotationRecord(label="cat", bbox=bbox)


def test_score_out_of_range_and_short_polygon_are_refused():
    with pytest.raises(ValueError, match="score"):
        AnnotationRecord(label="cat", bbox=(0, 0, 1, 1), score=1.5)
    with pytest.raises(ValueError, match="polygon"):
        AnnotationRecord(label="cat", bbox=(0, 0, 1, 1), polygons=[[0, 0, 1, 1]])


def test_kind_and_ensure_labels():
    ann = AnnotationRecord(label="fox", bbox=(0, 0, 2, 2), polygons=[[0, 0, 2, 0, 2, 2]])
    assert ann.kind == "polygon"
    ds = DatasetRecord(labels=["cat"], images=[ImageRecord(file_name="a.png", annotations=[ann])])
    ds.ensure_labels()
    assert ds.labels == ["cat", "fox"]


def test_an_unknown_review_state_is_refused_with_the_known_ones() -> None:
    import pytest

    from labelloop.core.records import AnnotationRecord

    with pytest.raises(ValueError, match="unknown review state 'hacked'.*accepted"):
        AnnotationRecord(label="cat", bbox=(0, 0, 5, 5), review_state="hacked")
    assert AnnotationRecord(label="cat", bbox=(0, 0, 5, 5), review_state="edited").review_state == "edited"
