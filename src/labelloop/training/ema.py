"""Exponential moving average of a model's weights (what is evaluated and kept as ``best.pt``).

Small detection data sets make validation mAP jump from epoch to epoch; the average of
the recent weights is smoother and usually a little better than the last step's.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

__all__ = ["WeightEma"]


class WeightEma:
    """EMA of ``model``'s state over about the last ``total_steps / 8`` steps (10..2000).

    The decay ramps up from 0 (``decay * (1 - exp(-updates / horizon))``), so early in
    training the average follows the model closely instead of the random head.
    """

    def __init__(self, model: nn.Module, total_steps: int) -> None:
        self.horizon = float(min(2000, max(10, total_steps / 8)))
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.updates = 0

    def decay(self) -> float:
        return (1.0 - 1.0 / self.horizon) * (1.0 - math.exp(-self.updates / self.horizon))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.decay()
        for avg, new in zip(self.module.state_dict().values(), model.state_dict().values(), strict=True):
            if avg.dtype.is_floating_point:
                avg.mul_(d).add_(new.detach(), alpha=1.0 - d)
            else:
                avg.copy_(new)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
