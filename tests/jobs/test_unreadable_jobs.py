"""One unreadable image never fails a job: 1000 images, five broken on disk after import (cut to 20
bytes, zero bytes, garbage, another kind of file, deleted) and one truncated that still decodes.
Train, suggest, QA and pre-annotate each run as a job, end ``succeeded`` with the broken images in
their scope listed (id, file, reason) in the result and the log, a warning count, and the rest
processed; too many broken images fail the job with the list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from labelloop.jobs import execute_job, get_job
from labelloop.jobs.records import create_job
from labelloop.services.demo import DEMO_CLASSES, make_shapes_dataset
from labelloop.services.importing import import_dataset
from labelloop.services.projects import load_project, new_project
from labelloop.services.splitting import assign_splits
from labelloop.settings import get_settings
from labelloop.store.project import ProjectContext
from labelloop.store.tables import Image

pytest.importorskip("torch")
pytestmark = pytest.mark.slow

N, LABELLED = 1000, 250  # every labelled image is a reference for suggest (at most 300 are)
ARGS = "epochs=1;image_size=64;batch_size=16"


def _break(ctx: ProjectContext) -> tuple[dict[int, str], set[int], int]:
    """Five images made unreadable on disk, by kind; the labelled ones among them; one truncated
    image that still decodes (kept, not skipped)."""
    with ctx.store.session() as s:
        rows = list(s.scalars(select(Image).where(Image.project_id == ctx.id).order_by(Image.id)))
        train = [r for r in rows if r.split == "train"]
        val = [r for r in rows if r.split == "val"]
        unlabelled = [r for r in rows if r.split is None]
        plan = {train[3]: "20 bytes", train[40]: "empty", val[5]: "garbage", unlabelled[7]: "other kind",
                unlabelled[300]: "deleted"}
        for row, kind in plan.items():
            path = ctx.root / row.storage_path
            if kind == "deleted":
                path.unlink()
            else:
                data = path.read_bytes()
                path.write_bytes({"20 bytes": data[:20], "empty": b"", "garbage": b"\x00\xff junk" * 50,
                                  "other kind": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}[kind])
        partly = ctx.root / unlabelled[500].storage_path
        partly.write_bytes(partly.read_bytes()[: partly.stat().st_size * 3 // 4])
        return ({r.id: k for r, k in plan.items()}, {r.id for r in plan if r.split is not None},
                unlabelled[500].id)


def _run(ctx: ProjectContext, kind: str, **params: Any) -> dict[str, Any]:
    job_id = create_job(ctx.store, kind, {"project": "p", **params}, project_id=ctx.id, actor="ana")
    execute_job(ctx.store, job_id, lambda slug: load_project(ctx.root))
    return get_job(ctx.store, job_id, log=True)


def _reported(job: dict[str, Any]) -> set[int]:
    out = job["output"]
    assert job["status"] == "succeeded", job["error"]
    assert out["warnings"] == len(out["skipped"]) and "unreadable image(s)" in job["message"]
    for s in out["skipped"]:
        assert s["file_name"] and s["reason"]
        assert f"image {s['image_id']}" in job["log"]  # in the job's log too
    return {s["image_id"] for s in out["skipped"]}


def test_every_job_skips_and_lists_the_broken_images(tmp_path: Path) -> None:
    data = make_shapes_dataset(tmp_path / "data", n_images=N, size=(64, 80), seed=3, with_polygons=False)
    for rec in data.images[LABELLED:]:
        rec.annotations = []
    ctx = new_project(tmp_path / "p", labels=list(DEMO_CLASSES))
    try:
        assert import_dataset(ctx, data).images_added == N
        assign_splits(ctx)
        broken, labelled, partly = _break(ctx)

        train = _run(ctx, "train", args=ARGS)
        assert _reported(train) == labelled  # training reads the labelled images only
        assert train["output"]["model"]["status"] == "ready"

        suggest = _run(ctx, "suggest", n=20)
        assert _reported(suggest) == set(broken)  # candidates: unlabelled; references: labelled
        assert len(suggest["output"]["suggestions"]) == 20
        assert not set(broken) & {p["image_id"] for p in suggest["output"]["suggestions"]}

        qa = _run(ctx, "qa")
        assert _reported(qa) == {i for i in labelled if broken[i] == "garbage"}  # the validation split

        pre = _run(ctx, "preannotate", images="all", threshold="0.3")
        assert _reported(pre) == set(broken)
        assert pre["output"]["images"] == N - len(broken)  # the truncated-but-decodable one included
        assert partly not in _reported(pre)
        assert {broken[s["image_id"]]: s["reason"] for s in pre["output"]["skipped"]}["deleted"]

        # too many broken images is no longer "a few bad files": the job fails and lists them
        get_settings.cache_clear()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("LABELLOOP_MAX_UNREADABLE_SHARE", "0.001")
            failed = _run(ctx, "preannotate", images="all", threshold="0.3")
        get_settings.cache_clear()
        assert failed["status"] == "failed"
        assert "5 of 1000 images cannot be read" in failed["error"] and "LABELLOOP_MAX_UNREADABLE_SHARE" in \
            failed["error"]
        assert all(f"image {i}" in failed["error"] for i in broken)
    finally:
        ctx.close()
