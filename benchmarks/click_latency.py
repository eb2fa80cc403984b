"""Click-to-box latency: the first click on an image (the model's candidates computed), the first
click in a fresh process on an image pre-annotation went over (candidates read from the disk cache)
and the next clicks (candidates in memory), against the bare model inference on the same image, in
one run.

Needs a project with a trained model, e.g. one that ``loop_value.py`` or ``simulate
--project-dir`` left behind:

    .venv/bin/python benchmarks/click_latency.py /tmp/loop-dense-click-xxxx [--images 30]

Prints p50/p95 milliseconds and the ratios to inference. Target: p95 <= 300 ms on 640x480.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from pathlib import Path

import numpy as np
from sqlalchemy import select

from labelloop.errors import NotFoundError
from labelloop.services import click
from labelloop.services.datasets import image_path
from labelloop.services.preannotate import load_model_predictor, read_rgb, resolve_model
from labelloop.store.project import open_project
from labelloop.store.tables import Image


def _p(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("project", type=Path)
    ap.add_argument("--images", type=int, default=30)
    a = ap.parse_args()
    ctx = open_project(a.project)
    try:
        model = resolve_model(ctx, None)
        predictor = load_model_predictor(ctx, model)
        with ctx.store.session() as s:
            rows = s.execute(select(Image.id, Image.storage_path, Image.width, Image.height)
                             .where(Image.project_id == ctx.id).order_by(Image.id).limit(a.images)).all()
        infer, cold, disk, warm = [], [], [], []
        rng = np.random.default_rng(0)
        for iid, path, w, h in rows:
            pixels = read_rgb(image_path(ctx, path))
            t = time.perf_counter()
            predictor.predict(pixels)
            infer.append(time.perf_counter() - t)
            for dst, n in ((cold, 1), (disk, 1), (warm, 5)):
                for _ in range(n):
                    x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
                    if dst is not warm:  # a fresh process finds nothing in memory
                        click._MEMORY.clear()
                    if dst is cold:  # nor on disk: the image was never pre-annotated
                        (ctx.root / "cache" / "candidates" / f"m{model.id}" / f"{iid}.json").unlink(missing_ok=True)
                    t = time.perf_counter()
                    with contextlib.suppress(NotFoundError):  # nothing there: still a timed answer
                        click.click_to_box(ctx, iid, x, y, actor="bench", model_id=model.id, predictor=predictor)
                    dst.append(time.perf_counter() - t)
        w, hgt = rows[0][2], rows[0][3]
        print(f"{len(rows)} images of {w}x{hgt}, model {model.id} ({getattr(predictor, 'backend', '?')})")
        print(f"inference (baseline)   p50 {_p(infer, 50):6.1f} ms  p95 {_p(infer, 95):6.1f} ms")
        print(f"first click on image   p50 {_p(cold, 50):6.1f} ms  p95 {_p(cold, 95):6.1f} ms  "
              f"= {statistics.median(cold) / statistics.median(infer):.2f}x inference")
        print(f"pre-annotated image    p50 {_p(disk, 50):6.1f} ms  p95 {_p(disk, 95):6.1f} ms  "
              f"= {statistics.median(disk) / statistics.median(infer):.2f}x inference")
        print(f"next clicks (cached)   p50 {_p(warm, 50):6.1f} ms  p95 {_p(warm, 95):6.1f} ms  "
              f"= {statistics.median(warm) / statistics.median(infer):.2f}x inference")
    finally:
        ctx.close()


if __name__ == "__main__":
    main()
