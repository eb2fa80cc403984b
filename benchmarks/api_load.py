"""API load: 10 simulated annotators against a real ``labelloop serve`` on a big project.

A project with ``--images`` images and ``--annotations`` annotations is bulk-inserted straight into
the server's database (rows only, no pixels); then each annotator loops: list a page of images
(keyset paging from a random point), open one image (detail + annotations + neighbours), save an
edit of one of its annotations (PATCH with its version). ``GET /api/health`` is measured in the
same run as the baseline; every figure is printed also as a ratio to it.

    python benchmarks/api_load.py                       # 100k images, 1M annotations
    python benchmarks/api_load.py --images 10000 --annotations 100000 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

PASSWORD = "bench-password-1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_project(home: Path, n_images: int, n_annotations: int, annotators: int) -> tuple[int, int]:
    """Bulk rows into HOME's server database; returns (first image id, last image id)."""
    os.environ["LABELLOOP_DATABASE_URL"] = f"sqlite:///{home / 'server.db'}"
    from sqlalchemy import insert, select

    from labelloop.services.projects import ProjectRegistry
    from labelloop.services.users import create_user, ensure_admin
    from labelloop.settings import get_settings
    from labelloop.store.tables import Annotation, Image, LabelClass, utcnow

    get_settings.cache_clear()
    registry = ProjectRegistry(home, os.environ["LABELLOOP_DATABASE_URL"])
    store = registry.store()
    ensure_admin(store, PASSWORD)
    for i in range(annotators):
        create_user(store, f"annotator{i}", PASSWORD, "annotator")
    registry.create("bench", labels=["car", "person", "bike", "dog", "sign"])
    ctx = registry.open("bench")
    rng = random.Random(0)
    now = utcnow()
    t0 = time.perf_counter()
    with store.session() as s:
        class_ids = list(s.scalars(select(LabelClass.id).where(LabelClass.project_id == ctx.id)))
        for start in range(0, n_images, 20_000):
            s.execute(insert(Image), [
                {"project_id": ctx.id, "file_name": f"img_{i:07d}.jpg", "storage_path": "", "linked": False,
                 "width": 1280, "height": 720, "sha256": f"{i:064x}", "split": None,
                 "status": "annotated" if i % 3 else "new", "created_at": now, "updated_at": now}
                for i in range(start, min(n_images, start + 20_000))])
        ids = select(Image.id).where(Image.project_id == ctx.id)
        first = s.execute(ids.order_by(Image.id).limit(1)).scalar()
        last = s.execute(ids.order_by(Image.id.desc()).limit(1)).scalar()
    with store.session() as s:
        batch = []
        for k in range(n_annotations):
            x, y = rng.uniform(0, 1100), rng.uniform(0, 600)
            batch.append({"project_id": ctx.id, "image_id": first + rng.randrange(n_images),
                          "class_id": rng.choice(class_ids), "x1": x, "y1": y, "x2": x + 80, "y2": y + 60,
                          "source": "human", "author": "import", "attributes": {}, "created_at": now,
                          "updated_at": now, "version": 1, "iscrowd": False})
            if len(batch) == 50_000 or k == n_annotations - 1:
                s.execute(insert(Annotation), batch)
                batch = []
    print(f"built {n_images:,} images and {n_annotations:,} annotations in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    registry.close()
    return first or 0, last or 0


class Recorder:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}

    async def timed(self, kind: str, client: httpx.AsyncClient, method: str, path: str,
                    **kwargs: Any) -> httpx.Response | None:
        t = time.perf_counter()
        try:
            response: httpx.Response | None = await client.request(method, path, **kwargs)
            ok = response is not None and response.status_code < 400
        except httpx.HTTPError:
            response, ok = None, False
        self.times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
        if not ok:
            self.errors[kind] = self.errors.get(kind, 0) + 1
        return response if ok else None


async def annotator(url: str, index: int, first: int, last: int, deadline: float, rec: Recorder,
                    think: float) -> None:
    """One person: list a page, open an image, move one of its boxes a little; pause; repeat."""
    rng = random.Random(index)
    base = "/api/projects/bench"
    async with httpx.AsyncClient(base_url=url, timeout=30) as c:
        login = await c.post("/api/auth/login", json={"username": f"annotator{index}", "password": PASSWORD})
        login.raise_for_status()
        while time.monotonic() < deadline:
            await asyncio.sleep(rng.uniform(0, 2 * think) if think else 0)
            await rec.timed("health (baseline)", c, "GET", "/api/health")
            after = rng.randrange(first, last)
            page = await rec.timed("list images", c, "GET", f"{base}/images", params={"after": after, "limit": 50})
            if page is None or not page.json()["items"]:
                continue
            # each annotator works on its own images (id % annotators), as a team splitting the work would
            mine = [i for i in page.json()["items"] if i["id"] % 10 == index] or page.json()["items"][:1]
            image = rng.choice(mine)
            detail = await rec.timed("open image", c, "GET", f"{base}/images/{image['id']}")
            if detail is None or not detail.json()["annotations"]:
                continue
            ann = rng.choice(detail.json()["annotations"])
            x1, y1, x2, y2 = ann["bbox"]
            dx = rng.uniform(-2, 2)
            body = {"label": ann["label"], "bbox": [x1 + dx, y1, x2 + dx, y2], "version": ann["version"]}
            await rec.timed("save edit", c, "PATCH", f"{base}/annotations/{ann['id']}", json=body)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(rec: Recorder, seconds: float) -> float:
    base = rec.times["health (baseline)"]
    b50, b99 = statistics.median(base), pct(base, 0.99)
    print(f"\n{'request':<20}{'n':>8}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'p50/base':>10}{'p99/base':>10}"
          f"{'errors':>8}")
    save_p99 = float("nan")
    for kind in ("health (baseline)", "list images", "open image", "save edit"):
        values = rec.times.get(kind, [])
        if not values:
            continue
        p50, p99 = statistics.median(values), pct(values, 0.99)
        if kind == "save edit":
            save_p99 = p99
        print(f"{kind:<20}{len(values):>8}{len(values) / seconds:>8.0f}{p50:>9.1f}{p99:>9.1f}"
              f"{p50 / b50:>10.1f}{p99 / b99:>10.1f}{rec.errors.get(kind, 0):>8}")
    return save_p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--annotations", type=int, default=1_000_000)
    parser.add_argument("--annotators", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--think", type=float, default=0.5,
                        help="mean seconds an annotator spends between two rounds (0 = hammer the server)")
    parser.add_argument("--home", type=Path, default=None, help="keep the server folder here (default: a temp dir)")
    ns = parser.parse_args()
    home = ns.home or Path(tempfile.mkdtemp(prefix="labelloop-bench-"))
    home.mkdir(parents=True, exist_ok=True)
    first, last = build_project(home, ns.images, ns.annotations, ns.annotators)
    port = _free_port()
    env = {**os.environ, "LABELLOOP_DATABASE_URL": f"sqlite:///{home / 'server.db'}"}
    server = subprocess.Popen([sys.executable, "-m", "labelloop.cli.serve", "--home", str(home), "--port", str(port),
                               "--no-worker"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(url + "/api/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        rec = Recorder()
        deadline = time.monotonic() + ns.seconds

        async def crowd() -> None:  # one event loop: the client adds no GIL contention of its own
            await asyncio.gather(*(annotator(url, i, first, last, deadline, rec, ns.think)
                                   for i in range(ns.annotators)))

        asyncio.run(crowd())
        print(f"{ns.annotators} annotators ({ns.think:.2f} s mean pause per round) for {ns.seconds:.0f} s on "
              f"{ns.images:,} images / {ns.annotations:,} annotations (SQLite, one uvicorn process)")
        save_p99 = report(rec, ns.seconds)
        verdict = "meets" if save_p99 <= 50 else "misses"
        print(f"\nsave p99 {save_p99:.1f} ms {verdict} the 50 ms target")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


if __name__ == "__main__":
    main()
