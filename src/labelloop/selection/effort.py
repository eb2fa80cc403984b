"""Effort accounting: count human actions in the annotation history and price them.

Cost model (seconds, defaults from annotation-timing studies, configurable):

=============  =====  =====================================================================
action         cost   counted from the history
=============  =====  =====================================================================
inspect        2.0    an ``inspect`` image event (a person opened and looked at an image)
draw           7.0    a human ``create`` (a box drawn from scratch)
fix            3.0    an ``update`` that moved/reshaped a box (a proposal or a drawn box)
delete         1.0    a ``reject`` of a proposal or a ``delete`` of a box
class_change   1.5    a ``class_change``, or an ``update`` that also changed the class
accept         0.5    an ``accept`` of a proposal: one click after the image was inspected
click          2.0    a ``click`` (click-to-box: one click on an object the model missed, the
                      model's best candidate there becomes the annotation; aim + a glance)
=============  =====  =====================================================================

Accepting costs 0.5 s: verifying a box is already paid for by ``inspect``; what is left is the
click (and a glance at that box). Only events of ``actor_kind == "human"`` are counted;
imports and model proposals are free.

"From scratch" for the same images: ``inspect`` each image + ``draw`` every final ground-truth object.
"Perfect model" for the same images: ``inspect`` each image + ``accept`` every final object
(the least a person must still do when every proposal is right).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from labelloop.errors import ConfigError

__all__ = ["ACTIONS", "ActionCounts", "CostModel", "EventView", "classify_event", "count_actions",
           "perfect_seconds", "scratch_seconds", "share_of_saving"]

ACTIONS = ("inspect", "draw", "accept", "fix", "delete", "class_change", "click")


@dataclass(frozen=True)
class CostModel:
    """Seconds per human action (see the module docstring)."""

    inspect: float = 2.0
    draw: float = 7.0
    fix: float = 3.0
    delete: float = 1.0
    class_change: float = 1.5
    accept: float = 0.5
    click: float = 2.0

    def with_overrides(self, values: Mapping[str, Any] | str | None) -> CostModel:
        """A copy with ``{"draw": 7}`` or ``"draw=7;fix=3"`` applied (names validated)."""
        if not values:
            return self
        items = _parse(values) if isinstance(values, str) else dict(values)
        names = {f.name for f in fields(self)}
        changes = {}
        for key, raw in items.items():
            name = str(key).strip().replace("-", "_")
            if name not in names:
                raise ConfigError(f"unknown action {key!r} in the cost model", f"expected one of: {', '.join(names)}")
            try:
                value = float(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"cost of {name}: expected seconds as a number, got {raw!r}",
                                  'e.g. --costs "draw=7;fix=3"') from None
            if not math.isfinite(value) or value < 0:
                raise ConfigError(f"cost of {name}: expected seconds >= 0, got {raw!r}")
            changes[name] = value
        return replace(self, **changes)

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _parse(text: str) -> dict[str, str]:
    out = {}
    for part in (p.strip() for p in re.split(r"[;,\n]", text)):
        if not part:
            continue
        if "=" not in part:
            raise ConfigError(f"expected name=seconds in the cost model, got {part!r}", 'e.g. --costs "draw=7;fix=3"')
        k, v = part.split("=", 1)
        out[k.strip()] = v.strip()
    return out


@dataclass
class ActionCounts:
    """Human actions of one round, and the images they touched."""

    inspect: int = 0
    draw: int = 0
    accept: int = 0
    fix: int = 0
    delete: int = 0
    class_change: int = 0
    click: int = 0
    images: set[int] = field(default_factory=set)

    def add(self, kind: str, n: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + n)

    def seconds_by_action(self, costs: CostModel) -> dict[str, float]:
        return {a: getattr(self, a) * getattr(costs, a) for a in ACTIONS}

    def seconds(self, costs: CostModel) -> float:
        return float(sum(self.seconds_by_action(costs).values()))

    def as_dict(self) -> dict[str, int]:
        return {a: getattr(self, a) for a in ACTIONS}


@dataclass(frozen=True)
class EventView:
    """The fields of a history event that accounting reads."""

    action: str
    actor_kind: str
    round: int
    image_id: int | None
    before: Mapping[str, Any] | None = None
    after: Mapping[str, Any] | None = None


def classify_event(action: str, actor_kind: str, before: Mapping[str, Any] | None = None,
                   after: Mapping[str, Any] | None = None) -> list[str]:
    """The priced actions one history event stands for (empty for non-human events)."""
    if actor_kind != "human":
        return []
    if action == "inspect":
        return ["inspect"]
    if action == "create":
        return ["draw"]
    if action == "click":
        return ["click"]
    if action == "accept":
        return ["accept"]
    if action in ("reject", "delete"):
        return ["delete"]
    if action == "class_change":
        return ["class_change"]
    if action == "update":
        out = []
        moved = (before or {}).get("bbox") != (after or {}).get("bbox") or \
            (before or {}).get("polygons") != (after or {}).get("polygons") or \
            (before or {}).get("rle") != (after or {}).get("rle")
        relabelled = (before or {}).get("label") != (after or {}).get("label")
        if moved or not relabelled:
            out.append("fix")
        if relabelled:
            out.append("class_change")
        return out
    return []


def count_actions(events: Iterable[EventView]) -> dict[int, ActionCounts]:
    """Per round: counts of priced actions and the images touched by a person."""
    rounds: dict[int, ActionCounts] = {}
    for ev in events:
        kinds = classify_event(ev.action, ev.actor_kind, ev.before, ev.after)
        if not kinds:
            continue
        counts = rounds.setdefault(ev.round, ActionCounts())
        for kind in kinds:
            counts.add(kind)
        if ev.image_id is not None:
            counts.images.add(ev.image_id)
    return dict(sorted(rounds.items()))


def scratch_seconds(n_images: int, n_objects: int, costs: CostModel) -> float:
    """Time to annotate the same images without a model: inspect each, draw every object."""
    return n_images * costs.inspect + n_objects * costs.draw


def perfect_seconds(n_images: int, n_objects: int, costs: CostModel) -> float:
    """Time with a perfect model on the same images: inspect each, accept every object."""
    return n_images * costs.inspect + n_objects * costs.accept


def share_of_saving(loop: float, scratch: float, perfect: float) -> float | None:
    """``(scratch - loop) / (scratch - perfect)``: the part of the achievable saving the loop realised
    (1 = as good as a perfect model, 0 = no saving, negative = slower than from scratch)."""
    room = scratch - perfect
    return (scratch - loop) / room if room > 1e-9 else None
