"""The prediction size chosen after training: planted models whose quality depends on the size they are
shown the image at, and a real tiny training whose model predicts at the chosen size everywhere."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from labelloop.core.samples import Sample, TrainingData
from labelloop.errors import ConfigError
from labelloop.models.artifacts import load_model_dir, predict_size
from labelloop.selection.effort import CostModel
from labelloop.training import TrainConfig, train_model
from labelloop.training import loop as training_loop
from labelloop.training.config import parse_args_string
from labelloop.training.predict_scale import MARGIN, MAX_INPUT_PIXELS, _subset, candidate_sizes, choose_predict_size

OBJECT = (20.0, 20.0, 36.0, 36.0)  # one 16 px object per 64 px image


class SizeDependent(nn.Module):
    """Finds the object exactly from ``sees_from`` px of input on, and adds a wrong box from ``noisy_from``.

    ``input_size`` is what :func:`labelloop.models.builders.set_input_size` sets on a custom model.
    """

    def __init__(self, sees_from: int, noisy_from: int = 10_000) -> None:
        super().__init__()
        self.input_size = 64
        self.sees_from, self.noisy_from = sees_from, noisy_from
        self.sizes_seen: list[int] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.sizes_seen.append(self.input_size)
        boxes, scores = [], []
        if self.input_size >= self.sees_from:
            boxes.append(OBJECT)
            scores.append(0.9)
        if self.input_size >= self.noisy_from:
            boxes += [(0.0, 40.0, 10.0, 50.0)] * 2
            scores += [0.95, 0.95]
        return [{"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                 "scores": torch.tensor(scores, dtype=torch.float32),
                 "labels": torch.ones(len(boxes), dtype=torch.int64)} for _ in images]


@pytest.fixture
def samples(tmp_path: Path) -> list[Sample]:
    out = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((64, 64, 3), 120, np.uint8)).save(path)
        out.append(Sample(i + 1, path, 64, 64, np.array([OBJECT], np.float32), np.array([0])))
    return out


def test_candidate_sizes_are_the_training_size_then_its_scales_in_multiples_of_32() -> None:
    assert candidate_sizes(640, 0.0) == [640, 800, 960, 1280]
    assert candidate_sizes(96, 0.0) == [96, 128, 160, 192]
    assert candidate_sizes(500, 0.0) == [500, 640, 736, 992]  # the training size itself, not 512
    assert candidate_sizes(640, 1.5) == [960] and candidate_sizes(500, 1.0) == [500]
    assert candidate_sizes(1600, 0.0) == [1600, 2016]  # 2048 (capped) is too close to 2016 to compare
    assert candidate_sizes(2560, 0.0) == [2560] and candidate_sizes(2560, 1.0) == [2560]  # never below training


def test_the_size_that_finds_the_object_is_chosen_and_bigger_ones_stop_once_worse(samples: list[Sample]) -> None:
    model = SizeDependent(sees_from=96, noisy_from=128)
    seen: list[tuple[int, float]] = []
    choice = choose_predict_size(model, samples, 1, 64, 0.0, progress=lambda d, t, s, sec: seen.append((s, sec)))
    # 64 px: no candidate, the object is drawn (inspect 2 s + draw 7 s); 96: accepted (2 + 0.5); 128: two
    # wrong boxes score above it, so proposing nothing and clicking the object is cheapest (2 + click 2)
    assert [c["size"] for c in choice.compared] == [64, 96, 128]
    assert [c["seconds_per_image"] for c in choice.compared] == [9.0, 2.5, 4.0]
    assert choice.predict_size == 96 and choice.scale == 1.5
    assert [s for s, _ in seen] == [64, 96, 128]
    assert model.input_size == 64  # left at the training size


def test_a_size_that_saves_less_than_the_margin_is_not_chosen(samples: list[Sample]) -> None:
    model = SizeDependent(sees_from=10_000)  # nothing changes with the size
    choice = choose_predict_size(model, samples, 1, 64, 0.0)
    assert choice.predict_size == 64 and choice.scale == 1.0
    assert [c["size"] for c in choice.compared] == [64, 96]  # 96 was no better: 128 is not tried
    assert MARGIN > 0


def test_a_fixed_scale_is_taken_without_predicting(samples: list[Sample]) -> None:
    model = SizeDependent(sees_from=96)
    choice = choose_predict_size(model, samples, 1, 64, 2.0)
    assert (choice.predict_size, choice.scale, choice.compared, model.sizes_seen) == (128, 2.0, [], [])
    assert choose_predict_size(model, [], 1, 64, 0.0).predict_size == 64  # no validation images


def test_the_projects_costs_price_the_review_and_a_stop_keeps_the_best_so_far(samples: list[Sample]) -> None:
    model = SizeDependent(sees_from=96)
    # drawing is as quick as accepting: no size is worth more than the margin over the training size
    flat = choose_predict_size(model, samples, 1, 64, 0.0, costs=CostModel(draw=0.5, click=0.5))
    assert flat.predict_size == 64 and [c["seconds_per_image"] for c in flat.compared] == [2.5, 2.5]
    calls = iter([False, True])
    stopped = choose_predict_size(SizeDependent(sees_from=96), samples, 1, 64, 0.0, stopped=lambda: next(calls))
    assert stopped.predict_size == 64 and [c["size"] for c in stopped.compared] == [64]


def test_the_choice_predicts_a_bounded_number_of_input_pixels(tmp_path: Path) -> None:
    def sample(i: int, w: int, h: int) -> Sample:
        return Sample(i, tmp_path / f"{i}.png", w, h, np.zeros((0, 4), np.float32), np.zeros(0, np.int64))

    small = [sample(i, 640, 480) for i in range(100)]
    assert len(_subset(small, 640, 0)) == MAX_INPUT_PIXELS // (640 * 480) == 40
    assert [s.image_id for s in _subset(small[:5], 640, 0)] == [0, 1, 2, 3, 4]
    # tiled at 1000 px, each tile shown at 640: a 4000 x 3000 image is 12e6 * 0.64 ** 2 = 4.9e6 input pixels
    picked = _subset([sample(i, 4000, 3000) for i in range(100)], 640, 1000)
    assert len(picked) == MAX_INPUT_PIXELS // int(12e6 * 0.64**2) == 2
    assert [p.image_id for p in picked] == [0, 99]


def test_predict_scale_argument() -> None:
    assert parse_args_string("predict_scale=auto") == {"predict_scale": 0.0}
    assert parse_args_string("predict_scale=1.5") == {"predict_scale": 1.5}
    assert TrainConfig().predict_scale == 0.0
    with pytest.raises(ConfigError, match=r"predict_scale: expected auto or a multiple"):
        parse_args_string("predict_scale=9")
    with pytest.raises(ConfigError, match=r"predict_scale: expected auto or a number, got 'big'"):
        parse_args_string("predict_scale=big")


def test_training_chooses_a_size_and_the_model_predicts_at_it(detect_data: TrainingData, tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    out = tmp_path / "run"
    train_model(detect_data, TrainConfig(epochs=2, lr=2e-3, image_size=96, batch_size=4, workers=0, device="cpu",
                                         augment="light"), out, progress=events.append)
    meta = json.loads((out / "model.json").read_text())
    sizes = [c["size"] for c in meta["predict_sizes"]]
    assert sizes[0] == 96 and meta["predict_size"] in sizes and meta["input_size"] == 96
    assert [c["scale"] for c in meta["predict_sizes"]] == [pytest.approx(s / 96, abs=1e-4) for s in sizes]
    compared = [e for e in events if e["type"] == "predict_size"]
    assert [e["size"] for e in compared] == sizes and events[-1]["predict_size"] == meta["predict_size"]
    model, _ = load_model_dir(out)
    assert model.transform.max_size == predict_size(meta) == meta["predict_size"]


def test_fixed_scale_training_and_old_models_without_a_prediction_size(detect_data: TrainingData,
                                                                      tmp_path: Path) -> None:
    out = tmp_path / "run"
    train_model(detect_data, TrainConfig(epochs=1, image_size=96, predict_scale=1, batch_size=4, workers=0,
                                         device="cpu", augment="light"), out)
    meta = json.loads((out / "model.json").read_text())
    assert (meta["predict_size"], meta["predict_sizes"]) == (96, [])
    del meta["predict_size"]  # a model trained before the prediction size existed
    assert predict_size(meta) == 96


def test_a_failed_choice_keeps_the_model_at_its_training_size(detect_data: TrainingData, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    def out_of_memory(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(training_loop, "choose_predict_size", out_of_memory)
    out = tmp_path / "run"
    result = train_model(detect_data, TrainConfig(epochs=1, image_size=96, batch_size=4, workers=0, device="cpu",
                                                  augment="light"), out)
    meta = json.loads((out / "model.json").read_text())
    assert result.reason == "completed" and (meta["predict_size"], meta["predict_sizes"]) == (96, [])
    assert "could not compare prediction sizes (CUDA out of memory)" in caplog.text
