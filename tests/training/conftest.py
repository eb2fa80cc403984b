"""Tiny generated data for training tests (see ``synth.py``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from labelloop.core.samples import TrainingData
from training.synth import make_training_data


@pytest.fixture
def detect_data(tmp_path: Path) -> TrainingData:
    return make_training_data(tmp_path / "data", n_train=16, n_val=8, task="detect")
