"""Effort report: human actions and estimated time per round, next to each round's model mAP.

Rounds: an event stamped with a round (pre-annotation, review and the simulator stamp
them) keeps it; an unstamped human event belongs to the round of the newest model that was
ready when it happened (0 before the first model). Round ``r`` is the work done with the
round-``r`` model in the loop; round 0 is annotating from scratch.

Costs: :class:`labelloop.selection.effort.CostModel` defaults, overridden by the project's
settings (``Project.settings["effort_costs"]``, e.g. ``{"draw": 9}``), overridden by
``costs`` (``"draw=7;fix=3"``).

"From scratch" for round ``r``: inspect each image first touched by a person in round ``r``
and draw every final ground-truth object on it (human, accepted or edited annotations now).
"Perfect model" for the same images: inspect each and accept every final object;
``share_of_saving`` = (scratch - loop) / (scratch - perfect), the part of the saving a model
could give that the loop realised.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from labelloop.core.output import output_file
from labelloop.errors import InvalidInputError
from labelloop.selection.effort import (
    ActionCounts,
    CostModel,
    EventView,
    count_actions,
    perfect_seconds,
    scratch_seconds,
    share_of_saving,
)
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Annotation, AnnotationEvent, Project, TrainedModel, is_ground_truth

__all__ = ["cost_model", "effort_report", "plot_effort"]



def cost_model(ctx: ProjectContext, costs: str | Mapping[str, Any] | None = None) -> CostModel:
    """Defaults <- project settings ``effort_costs`` <- ``costs``."""
    with ctx.store.session() as s:
        project = s.get(Project, ctx.project_id)  # the project's settings hold for all its layers
        stored = dict((project.settings or {}).get("effort_costs") or {}) if project else {}
    return CostModel().with_overrides(stored).with_overrides(costs)


def _models(ctx: ProjectContext) -> list[TrainedModel]:
    with ctx.store.session() as s:
        rows = list(s.scalars(select(TrainedModel).where(TrainedModel.project_id == ctx.id,
                                                         TrainedModel.status == "ready")
                              .order_by(TrainedModel.finished_at, TrainedModel.id)))
        for m in rows:
            s.expunge(m)
        return rows


def _events(ctx: ProjectContext, models: list[TrainedModel]) -> list[EventView]:
    ready = [(m.finished_at, m.round) for m in models if m.finished_at is not None]
    times = [t for t, _ in ready]
    out = []
    with ctx.store.session() as s:
        q = select(AnnotationEvent.action, AnnotationEvent.actor_kind, AnnotationEvent.round, AnnotationEvent.at,
                   AnnotationEvent.image_id, AnnotationEvent.before, AnnotationEvent.after).where(
            AnnotationEvent.project_id == ctx.id, AnnotationEvent.actor_kind == "human").order_by(AnnotationEvent.id)
        for action, kind, rnd, at, image_id, before, after in s.execute(q):
            if rnd is None:
                k = bisect_right(times, at)
                rnd = max((r for _, r in ready[:k]), default=0)
            out.append(EventView(action, kind, int(rnd), image_id, before, after))
    return out


def _objects(ctx: ProjectContext, image_ids: set[int]) -> int:
    if not image_ids:
        return 0
    with ctx.store.session() as s:
        total = 0
        ids = sorted(image_ids)
        for start in range(0, len(ids), 500):
            total += s.scalar(select(func.count()).select_from(Annotation).where(
                Annotation.image_id.in_(ids[start:start + 500]), is_ground_truth())) or 0
        return int(total)


def _map50(model: TrainedModel | None) -> float | None:
    if model is None:
        return None
    value = (model.metrics or {}).get("map50", (model.metrics or {}).get("miou"))
    return float(value) if value is not None else None


def effort_report(ctx: ProjectContext, *, costs: str | Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Per round: human actions, estimated seconds with the loop, from scratch and with a perfect
    model, the share of the achievable saving realised, and the model's mAP@.5.

    Returns ``{"costs": {...}, "rounds": [{"round", "model_id", "map50", "images", "objects",
    "actions": {...}, "seconds_by_action": {...}, "seconds_loop", "seconds_scratch",
    "seconds_perfect", "ratio", "share_of_saving"}], "total": {...}}``.
    """
    model_costs = cost_model(ctx, costs)
    models = _models(ctx)
    by_round: dict[int, TrainedModel] = {}
    for m in models:
        by_round[m.round] = m  # newest model of each round
    counted = count_actions(_events(ctx, models))
    seen: set[int] = set()
    rounds = []
    for rnd, counts in counted.items():
        new_images = counts.images - seen
        seen |= counts.images
        rounds.append(_round_row(ctx, rnd, counts, new_images, model_costs, by_round.get(rnd)))
    loop = sum(r["seconds_loop"] for r in rounds)
    scratch = sum(r["seconds_scratch"] for r in rounds)
    after0 = [r for r in rounds if r["round"] > 0]
    loop1, scratch1 = sum(r["seconds_loop"] for r in after0), sum(r["seconds_scratch"] for r in after0)
    perfect1 = sum(r["seconds_perfect"] for r in after0)
    share1 = share_of_saving(loop1, scratch1, perfect1) if after0 else None
    return {"costs": model_costs.as_dict(), "rounds": rounds,
            "total": {"seconds_loop": round(loop, 2), "seconds_scratch": round(scratch, 2),
                      "ratio": round(loop / scratch, 4) if scratch else None,
                      "ratio_after_round0": round(loop1 / scratch1, 4) if scratch1 else None,
                      "seconds_perfect_after_round0": round(perfect1, 2),
                      "share_of_saving_after_round0": round(share1, 4) if share1 is not None else None}}


def _round_row(ctx: ProjectContext, rnd: int, counts: ActionCounts, new_images: set[int], costs: CostModel,
               model: TrainedModel | None) -> dict[str, Any]:
    objects = _objects(ctx, new_images)
    loop = counts.seconds(costs)
    scratch = scratch_seconds(len(new_images), objects, costs)
    perfect = perfect_seconds(len(new_images), objects, costs)
    share = share_of_saving(loop, scratch, perfect)
    return {"round": rnd, "model_id": model.id if model else None, "map50": _map50(model),
            "images": len(counts.images), "new_images": len(new_images), "objects": objects,
            "actions": counts.as_dict(),
            "seconds_by_action": {a: round(v, 2) for a, v in counts.seconds_by_action(costs).items()},
            "seconds_loop": round(loop, 2), "seconds_scratch": round(scratch, 2),
            "seconds_perfect": round(perfect, 2), "ratio": round(loop / scratch, 4) if scratch else None,
            "share_of_saving": round(share, 4) if share is not None else None}


PLOT_SUFFIXES = (".png", ".svg", ".pdf")


def plot_effort(report: Mapping[str, Any], out: Path) -> Path:
    """PNG: cumulative time with the loop vs from scratch per round, and mAP@.5 per round."""
    if out.suffix.lower() not in PLOT_SUFFIXES:
        raise InvalidInputError(f"cannot write a plot to {out.name!r}",
                                f"name the file with one of: {', '.join(PLOT_SUFFIXES)} (e.g. report.png)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["rounds"]
    xs = [r["round"] for r in rows]
    loop, scratch, acc_l, acc_s = [], [], 0.0, 0.0
    for r in rows:
        acc_l += r["seconds_loop"] / 60
        acc_s += r["seconds_scratch"] / 60
        loop.append(acc_l)
        scratch.append(acc_s)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(xs, scratch, "o-", label="from scratch")
    ax1.plot(xs, loop, "o-", label="with the loop")
    ax1.set(xlabel="round", ylabel="cumulative human time (min)", title="annotation effort")
    ax1.legend()
    maps = [(r["round"], r["map50"]) for r in rows if r["map50"] is not None]
    if maps:
        ax2.plot([m[0] for m in maps], [m[1] for m in maps], "o-", color="tab:green")
    ax2.set(xlabel="round", ylabel="validation mAP@.5", title="model quality", ylim=(0, 1))
    for ax in (ax1, ax2):
        ax.set_xticks(xs)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    try:
        with output_file(out, "plot") as tmp:  # never a half-written plot under either name
            fig.savefig(tmp, dpi=100)
    finally:
        plt.close(fig)
    return out
