"""A tiny trained model directory shared by the inference tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from labelloop.training import TrainConfig, train_model
    from training.synth import make_training_data

    root = tmp_path_factory.mktemp("infer")
    data = make_training_data(root / "data", n_train=8, n_val=4)
    train_model(data, TrainConfig(epochs=1, image_size=96, workers=0, device="cpu"), root / "model")
    return root / "model"
