"""The cost model and the classification of history events."""

from __future__ import annotations

import pytest

from labelloop.errors import ConfigError
from labelloop.selection.effort import CostModel, EventView, classify_event, count_actions, scratch_seconds


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
    assert classify_event("update", "human", box, {**box, "bbox": [0, 0, 2, 2]}) == ["fix"]
    assert classify_event("update", "human", box, {**box, "bbox": [0, 0, 2, 2], "label": "b"}) == ["fix",
                                                                                                 "class_change"]
    assert classify_event("class_change", "human", box, {**box, "label": "b"}) == ["class_change"]
    assert classify_event("reject", "human") == classify_event("delete", "human") == ["delete"]
    assert classify_event("upload", "human") == []


def test_count_and_price():
    events = [EventView("inspect", "human", 1, 5), EventView("accept", "human", 1, 5),
              EventView("create", "human", 1, 6), EventView("create", "model", 1, 6),
              EventView("inspect", "human", 0, 1)]
    counts = count_actions(events)
    assert list(counts) == [0, 1]
    assert counts[1].as_dict() == {"inspect": 1, "draw": 1, "accept": 1, "fix": 0, "delete": 0, "class_change": 0}
    assert counts[1].images == {5, 6}
    assert counts[1].seconds(CostModel()) == 2 + 7 + 0.5
    assert scratch_seconds(3, 10, CostModel()) == 3 * 2 + 10 * 7
