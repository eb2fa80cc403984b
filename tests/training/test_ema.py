"""Weight EMA: follows the model early, averages later, copies integer buffers, resumes."""

from __future__ import annotations

import torch
from torch import nn

from labelloop.training.ema import WeightEma


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))


def test_average_lies_between_old_and_new_weights() -> None:
    model = _model()
    ema = WeightEma(model, total_steps=800)  # horizon 100 steps
    start = model[0].weight.detach().clone()
    for _ in range(50):
        ema.update(model)
    assert torch.allclose(ema.module[0].weight, start)  # a constant model averages to itself
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    moved = ema.module[0].weight - start
    assert bool(((moved > 0) & (moved < 1.0)).all())
    assert 0 < ema.decay() < 1 - 1 / ema.horizon


def test_early_updates_follow_the_model_closely() -> None:
    model = _model()
    ema = WeightEma(model, total_steps=10_000)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update(model)
    assert ema.decay() < 0.01
    assert torch.allclose(ema.module[0].weight, model[0].weight, atol=0.02)


def test_integer_buffers_are_copied_and_state_round_trips() -> None:
    model = _model()
    ema = WeightEma(model, total_steps=100)
    model.train()
    model(torch.rand(4, 3))  # num_batches_tracked 0 -> 1
    ema.update(model)
    assert int(ema.module[1].num_batches_tracked) == 1
    again = WeightEma(_model(), total_steps=100)
    again.load_state_dict(ema.state_dict())
    assert again.updates == 1 and torch.equal(again.module[0].weight, ema.module[0].weight)
    assert not any(p.requires_grad for p in again.module.parameters())
