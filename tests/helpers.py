"""Test helpers shared across the tree: the shared datasets, and the real `labelloop` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

__all__ = ["LABELLOOP", "SHARED_DATASETS", "run", "shared_dataset"]

SHARED_DATASETS = Path(os.environ.get("LABELLOOP_SHARED_DATASETS",
                                      Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/datasets, or skip the test cleanly when it is absent."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"shared dataset {name} not available at {path}")
    return path


LABELLOOP = str(Path(sys.executable).parent / "labelloop")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABELLOOP_DEBUG": ""}
    return subprocess.run([LABELLOOP, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
