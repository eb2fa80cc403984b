"""The selection benchmark's reduced form (generated shapes, 1 seed, tiny rounds) runs end to end, so it
cannot rot: a table per dataset with every strategy asked for, and the verdict line; and it removes the
project folders it trained in (gigabytes each at full size), unless asked to keep them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytestmark = pytest.mark.slow
BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "selection.py"


def test_quick_selection_benchmark_prints_ranked_strategies(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    r = subprocess.run([sys.executable, str(BENCH), "--quick", "--strategies", "random,effort", "--cache",
                        str(tmp_path / "cache")], capture_output=True, text=True, timeout=900,
                       env={**os.environ, "TMPDIR": str(scratch)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert not [p.name for p in scratch.iterdir() if p.name.startswith(("select-", "labelloop-simulate-"))]
    lines = r.stdout.splitlines()
    assert lines[0] == "### shapes (seeds 0)" and "mAP after r2" in lines[1]
    rows = [line for line in lines if line.startswith("| random ") or line.startswith("| effort ")]
    assert len(rows) == 2 and all(line.count("±") == 4 for line in rows)  # r0..r2 mAP and loop seconds
    assert any(line.endswith("leads on one seed only: no spread between seeds to judge the lead by")
               for line in lines)
