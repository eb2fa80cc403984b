"""The selection benchmark's --report: saved runs merged by seed (a seed saved twice counts once),
strategies compared on the seeds they share, a paired verdict, and clear errors for runs that cannot
be compared. No training: the runs are written here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "selection.py"


def _run(seed: int, final: float, rounds: int = 1) -> dict:
    maps = [0.5 + 0.01 * seed] + [final] * rounds
    return {"seed": seed, "map": maps, "seconds": [0.0] + [100.0 * (k + 1) for k in range(rounds)],
            "images": [10 + 50 * k for k in range(rounds + 1)], "loop_seconds": 100.0 * rounds, "wall": 1.0}


def _save(path: Path, runs: dict) -> Path:
    path.write_text(json.dumps({"toy": runs}))
    return path


def _report(*files: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), "--report", *map(str, files)], capture_output=True,
                          text=True, timeout=60)


def test_report_merges_seeds_once_and_pairs_the_verdict(tmp_path: Path) -> None:
    a = _save(tmp_path / "a.json", {"random": [_run(0, 0.70), _run(1, 0.74)],
                                    "diversity": [_run(0, 0.75), _run(1, 0.77)]})
    b = _save(tmp_path / "b.json", {"random": [_run(2, 0.72)], "diversity": [_run(2, 0.71)],
                                    "hybrid": [_run(2, 0.9)]})
    r = _report(a, b, a)  # a given twice: its seeds still count once
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "### toy (seeds 0, 1, 2)"
    rows = {line.split(" | ")[0][2:]: line for line in lines if line.startswith("| ") and "±" in line}
    assert set(rows) == {"random", "diversity"}  # hybrid has seed 2 only: left out of the comparison
    assert "0.743 ± 0.031" in rows["diversity"] and "0.720 ± 0.020" in rows["random"]  # sample sd over 3 seeds
    verdict = next(line for line in lines if line.startswith("diversity leads random"))
    assert "+0.023 mAP@.5, which exceeds the seed spread (0.031)" not in verdict
    assert "is within the seed spread (0.031)" in verdict
    assert "paired by seed +0.023 ± 0.031, ahead on 2 of 3 seeds" in verdict
    assert "hybrid: left out, it lacks seeds [0, 1] of the table" in lines


def test_report_leaves_out_seeds_not_every_strategy_has(tmp_path: Path) -> None:
    runs = {"random": [_run(0, 0.7), _run(1, 0.7), _run(2, 0.7)], "mixed": [_run(0, 0.6), _run(1, 0.6)],
            "diversity": [_run(0, 0.8), _run(1, 0.8)]}
    r = _report(_save(tmp_path / "runs.json", runs))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("### toy (seeds 0, 1)\n")
    assert "random: seeds [2] left out (the other strategies lack them)" in r.stdout


def test_report_says_why_runs_cannot_be_compared(tmp_path: Path) -> None:
    lengths = _save(tmp_path / "lengths.json", {"random": [_run(0, 0.7, rounds=1)], "mixed": [_run(0, 0.6, rounds=3)]})
    r = _report(lengths)
    assert r.returncode != 0 and "different numbers of rounds" in r.stderr and "Traceback" not in r.stderr
    unseeded = tmp_path / "old.json"
    unseeded.write_text(json.dumps({"toy": {"random": [{k: v for k, v in _run(0, 0.7).items() if k != "seed"}]}}))
    r = _report(unseeded)
    assert r.returncode != 0 and "has no 'seed'" in r.stderr
    (tmp_path / "broken.json").write_text("{")
    r = _report(tmp_path / "broken.json")
    assert r.returncode != 0 and "expected a file written by --json" in r.stderr and "Traceback" not in r.stderr


def test_report_on_one_seed_does_not_judge_the_lead(tmp_path: Path) -> None:
    one = _save(tmp_path / "one.json", {"random": [_run(0, 0.7)], "mixed": [_run(0, 0.8)]})
    r = _report(one)
    assert r.returncode == 0, r.stderr
    assert "mixed leads on one seed only: no spread between seeds to judge the lead by" in r.stdout
