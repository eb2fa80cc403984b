"""The cost model and the classification of history events."""

from __future__ import annotations

import pytest

from labelloop.errors import ConfigError
from labelloop.selection.effort import (
    CostModel,
    EventView,
    classify_event,
    count_actions,
    perfect_seconds,
    scratch_seconds,
    share_of_saving,
)


def test_cost_model_overrides():
    c = CostModel().with_overrides("draw=9; fix=4").with_overrides({"accept": 0})
    assert (c.draw, c.fix, c.accept, c.inspect) == (9.0, 4.0, 0.0, 2.0)
    with pytest.raises(ConfigError, match="unknown action 'drag'"):
        CostModel().with_overrides("drag=3")
    with pytest.raises(ConfigError, match=">= 0"):
        CostModel().with_overrides("draw=-1")
    with pytest.raises(ConfigError, match="name=seconds"):
        CostModel().with_overrides("draw")


def test_classify_event():
    box = {"bbox": [0, 0, 1, 1], "label": "a", "polygons": None, "rle": None}
    assert classify_event("create", "model") == []
    assert classify_event("create", "human") == ["draw"]
    assert classify_event("click", "human") == ["click"] and classify_event("click", "model") == []
    assert classify_event("update", "human", box, {**box, "bbox": [0, 0, 2, 2]}) == ["fix"]
    assert classify_event("update", "human", box, {**box, "bbox": [0, 0, 2, 2], "label": "b"}) == ["fix",
                                                                                                 "class_change"]
    assert classify_event("class_change", "human", box, {**box, "label": "b"}) == ["class_change"]
    assert classify_event("reject", "human") == classify_event("delete", "human") == ["delete"]
    assert classify_event("upload", "human") == []


def test_count_and_price():
    events = [EventView("inspect", "human", 1, 5), EventView("accept", "human", 1, 5),
              EventView("create", "human", 1, 6), EventView("create", "model", 1, 6),
              EventView("click", "human", 1, 6), EventView("inspect", "human", 0, 1)]
    counts = count_actions(events)
    assert list(counts) == [0, 1]
    assert counts[1].as_dict() == {"inspect": 1, "draw": 1, "accept": 1, "fix": 0, "delete": 0, "class_change": 0,
                                   "click": 1}
    assert counts[1].images == {5, 6}
    c = CostModel().with_overrides("inspect=3;draw=11;accept=0.25;click=1.5")
    assert counts[1].seconds(c) == 3 + 11 + 0.25 + 1.5
    assert scratch_seconds(3, 10, c) == 3 * 3 + 10 * 11
    assert perfect_seconds(3, 10, c) == 3 * 3 + 10 * 0.25


def test_share_of_saving():
    assert share_of_saving(loop=100, scratch=100, perfect=20) == 0.0
    assert share_of_saving(loop=20, scratch=100, perfect=20) == 1.0
    assert share_of_saving(loop=60, scratch=100, perfect=20) == pytest.approx(0.5)
    assert share_of_saving(loop=120, scratch=100, perfect=20) < 0  # slower than from scratch
    assert share_of_saving(loop=5, scratch=10, perfect=10) is None  # nothing to save
