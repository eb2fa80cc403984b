"""Effort numbers follow the cost model exactly for a scripted sequence of actions."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelloop.errors import ConfigError, InvalidInputError
from labelloop.selection.effort import CostModel
from labelloop.services.annotations import (
    AnnotationInput,
    create_annotation,
    delete_annotation,
    record_image_event,
    review_annotation,
    update_annotation,
)
from labelloop.services.effort import effort_report, plot_effort
from labelloop.store.tables import Project
from selection.loopkit import add_fake_model, demo_with_truth, image_ids


def test_scripted_actions_priced_exactly(tmp_path):
    ctx, _ = demo_with_truth(tmp_path / "p", n_images=6, labelled=2)
    ids = image_ids(ctx)
    a, b = ids["shapes_0002.jpg"], ids["shapes_0003.jpg"]
    # round 0: from scratch on image a: inspect, draw 3 boxes, delete one of them
    record_image_event(ctx, a, "inspect", actor="ann", round_=0)
    drawn = [create_annotation(ctx, a, AnnotationInput(label="circle", bbox=(10 * k, 5, 10 * k + 8, 15)),
                               actor="ann", round_=0) for k in range(3)]
    delete_annotation(ctx, drawn[2]["id"], actor="ann", round_=0)
    # round 1: model proposals on image b (free), reviewed by a person
    m = add_fake_model(ctx, ["circle", "square", "triangle"], round_=1)
    props = [create_annotation(ctx, b, AnnotationInput(label="circle", bbox=(10 * k, 5, 10 * k + 8, 15), score=0.8),
                               actor=f"model:{m}", source=f"model:{m}", model_id=m, round_=1) for k in range(5)]
    record_image_event(ctx, b, "inspect", actor="rev", round_=1)
    review_annotation(ctx, props[0]["id"], "accept", actor="rev", round_=1)
    review_annotation(ctx, props[1]["id"], "accept", actor="rev", round_=1)
    update_annotation(ctx, props[2]["id"], AnnotationInput(label="circle", bbox=(20, 6, 29, 16)), actor="rev",
                      expected_version=props[2]["version"], round_=1)  # fix
    update_annotation(ctx, props[3]["id"], AnnotationInput(label="square", bbox=tuple(props[3]["bbox"])),
                      actor="rev", expected_version=props[3]["version"], round_=1)  # class change
    review_annotation(ctx, props[4]["id"], "reject", actor="rev", round_=1)
    create_annotation(ctx, b, AnnotationInput(label="triangle", bbox=(60, 60, 80, 80)), actor="rev", round_=1)
    create_annotation(ctx, b, AnnotationInput(label="triangle", bbox=(90, 60, 99, 70)), actor="rev", round_=1,
                      action="click")  # click-to-box
    report = effort_report(ctx)
    r0, r1 = report["rounds"]
    c = CostModel()
    assert r0["actions"] == {"inspect": 1, "draw": 3, "accept": 0, "fix": 0, "delete": 1, "class_change": 0,
                             "click": 0}
    assert r0["seconds_loop"] == c.inspect + 3 * c.draw + c.delete
    assert r0["objects"] == 2 and r0["seconds_scratch"] == c.inspect + 2 * c.draw
    assert r1["actions"] == {"inspect": 1, "draw": 1, "accept": 2, "fix": 1, "delete": 1, "class_change": 1,
                             "click": 1}
    loop1 = c.inspect + c.draw + 2 * c.accept + c.fix + c.delete + c.class_change + c.click
    assert r1["seconds_loop"] == pytest.approx(loop1)
    assert r1["seconds_by_action"]["click"] == c.click and r1["seconds_by_action"]["accept"] == 2 * c.accept
    # 4 kept proposals + 1 drawn + 1 clicked
    assert r1["objects"] == 6 and r1["seconds_scratch"] == c.inspect + 6 * c.draw
    assert r1["seconds_perfect"] == c.inspect + 6 * c.accept
    assert r1["share_of_saving"] == pytest.approx((r1["seconds_scratch"] - loop1)
                                                  / (r1["seconds_scratch"] - r1["seconds_perfect"]), abs=1e-3)
    assert r1["model_id"] == m and r1["map50"] == 0.9
    assert report["total"]["ratio_after_round0"] == pytest.approx(r1["seconds_loop"] / r1["seconds_scratch"], 1e-3)
    # project settings, then --costs, override the defaults
    with ctx.store.session() as s:
        s.get(Project, ctx.id).settings = {"effort_costs": {"draw": 10}}
    custom = effort_report(ctx, costs="accept=1;fix=2")
    assert custom["costs"]["draw"] == 10 and custom["costs"]["accept"] == 1
    assert custom["rounds"][1]["seconds_loop"] == c.inspect + 10 + 2 * 1 + 2 + c.delete + c.class_change + c.click
    with pytest.raises(ConfigError):
        effort_report(ctx, costs="typo=1")
    png = plot_effort(report, tmp_path / "out" / "report.png")
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(InvalidInputError, match="e.g. report.png"):
        plot_effort(report, tmp_path / "out" / "report.txt")
    with pytest.raises(InvalidInputError, match="cannot write the plot to .*report.png/again.png"):
        plot_effort(report, tmp_path / "out" / "report.png" / "again.png")  # under a file, not a folder
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.png"]  # nothing half-written
    ctx.close()


def test_unstamped_events_fall_into_the_round_of_the_newest_model(tmp_path: Path):
    ctx, _ = demo_with_truth(tmp_path / "p", n_images=4, labelled=2)
    iid = image_ids(ctx)["shapes_0003.jpg"]
    record_image_event(ctx, iid, "inspect", actor="ann")  # before any model: round 0
    from labelloop.store.tables import TrainedModel, utcnow

    m = add_fake_model(ctx, ["circle"], round_=2)
    with ctx.store.session() as s:
        s.get(TrainedModel, m).finished_at = utcnow()
    record_image_event(ctx, iid, "inspect", actor="ann")  # after model of round 2
    rounds = {r["round"]: r["actions"]["inspect"] for r in effort_report(ctx)["rounds"]}
    assert rounds == {0: 1, 2: 1}
    ctx.close()
