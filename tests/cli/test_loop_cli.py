"""The loop commands in a subprocess on a really trained (tiny) model: --json shapes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from selection.loopkit import trained_demo

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

LABELLOOP = str(Path(sys.executable).parent / "labelloop")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABELLOOP_DEBUG": ""}
    return subprocess.run([LABELLOOP, *args], capture_output=True, text=True, env=env, timeout=600)


def ok(*args: str):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def proj() -> str:
    root, _ = trained_demo()
    return str(root)


def test_preannotate_review_report(proj, tmp_path):
    first = ok("preannotate", "--json", "-p", proj)
    assert set(first) >= {"model_id", "images", "proposals", "replaced", "skipped", "thresholds"}
    assert first["images"] == 8 and first["skipped"] == []
    assert set(first["thresholds"]) == {"circle", "square", "triangle"}
    assert all({"threshold", "method"} <= set(t) for t in first["thresholds"].values())
    again = ok("preannotate", "--json", "--threshold", "0.05", "--images", "status=pre-annotated;name=*.jpg",
               "-p", proj)
    assert again["images"] <= 8 and again["thresholds"]["circle"]["method"] == "given"
    reviewed = ok("review", "--accept-above", "0.9", "--reject-below", "0.06", "--reviewer", "cli-test", "--json",
                  "-p", proj)
    assert reviewed["reviewer"] == "cli-test" and set(reviewed) >= {"accepted", "rejected", "left", "images"}
    report = ok("report", "--json", "--out", str(tmp_path / "r.png"), "--costs", "draw=8", "-p", proj)
    assert report["costs"]["draw"] == 8 and (tmp_path / "r.png").is_file()
    assert all({"round", "actions", "seconds_loop", "seconds_scratch", "map50"} <= set(r) for r in report["rounds"])


def test_suggest_and_qa(proj):
    items = ok("suggest", "--n", "3", "--json", "-p", proj)
    assert 1 <= len(items) <= 3
    assert all({"image_id", "file_name", "score", "reasons"} <= set(i) and i["reasons"] for i in items)
    assert len({i["image_id"] for i in items}) == len(items)



def test_qa_finds_a_planted_duplicate(proj, tmp_path):
    import shutil

    from helpers import plant_duplicate
    from labelloop.services.projects import load_project

    copy = tmp_path / "proj"
    shutil.copytree(proj, copy)  # the shared project stays as it is
    ctx = load_project(copy)
    try:
        image_id, dup = plant_duplicate(ctx)
    finally:
        ctx.close()
    issues = ok("qa", "--json", "--min-score", "0.05", "-p", str(copy))
    assert all({"kind", "image_id", "file_name", "annotation_id", "score", "message"} <= set(i) for i in issues)
    assert ("duplicate", image_id, dup["id"]) in {(i["kind"], i["image_id"], i["annotation_id"]) for i in issues}


def test_errors_are_one_line(proj):
    r = run("preannotate", "--threshold", "giraffe=0.3", "-p", proj)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "unknown class 'giraffe'" in r.stderr
    r = run("review", "-p", proj)
    assert r.returncode == 1 and "nothing to do" in r.stderr and "Traceback" not in r.stderr
    r = run("simulate", "/nonexistent/dataset")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run("report", "--costs", "draw=fast", "-p", proj)
    assert r.returncode == 1 and "expected seconds" in r.stderr
