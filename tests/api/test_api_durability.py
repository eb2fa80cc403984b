"""Every acknowledged save survives the server being killed: a burst of annotation saves from four
clients, SIGKILL to the server in the middle of it, a restart on the same store, and every save that
was answered 201 is there (SQLite in WAL mode with synchronous=NORMAL, and PostgreSQL)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from live_server import LiveServer, png_bytes

pytestmark = pytest.mark.slow


def _burst_then_kill(server: LiveServer, slug: str, image_id: int, seconds: float = 3.0) -> list[int]:
    acknowledged: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def save(worker: int) -> None:
        with server.client() as c:
            n = 0
            while not stop.is_set():
                n += 1
                x = (worker * 7 + n) % 40
                try:
                    r = c.post(f"/api/projects/{slug}/images/{image_id}/annotations",
                               json={"label": "cat", "bbox": [x, 2, x + 10, 12]})
                except httpx.HTTPError:
                    return  # the server is gone: this save was not acknowledged
                if r.status_code == 201:
                    with lock:
                        acknowledged.append(r.json()["id"])

    threads = [threading.Thread(target=save, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    assert server.proc is not None
    server.proc.kill()  # SIGKILL: no shutdown, no flush, mid-request
    server.proc.wait()
    stop.set()
    for t in threads:
        t.join(30)
    return acknowledged


def _check(home: Path, database_url: str = "") -> None:
    server = LiveServer(home, database_url=database_url).start()
    try:
        with server.client() as c:
            slug = c.post("/api/projects", json={"name": "durable", "labels": ["cat"]}).json()["slug"]
            c.post(f"/api/projects/{slug}/images", files=[("files", ("a.png", png_bytes(), "image/png"))])
            image_id = c.get(f"/api/projects/{slug}/images").json()["items"][0]["id"]
        acknowledged = _burst_then_kill(server, slug, image_id)
    finally:
        server.stop()
    assert len(acknowledged) > 20, "the burst saved too little to test anything"
    again = LiveServer(home, database_url=database_url).start()
    try:
        with again.client() as c:
            stored = {a["id"] for a in c.get(f"/api/projects/{slug}/images/{image_id}/annotations").json()}
    finally:
        again.stop()
    lost = set(acknowledged) - stored
    print(f"durability: {len(acknowledged)} acknowledged saves, {len(lost)} lost after SIGKILL")
    assert not lost, f"{len(lost)} of {len(acknowledged)} acknowledged saves lost after SIGKILL"


def test_no_acknowledged_save_is_lost_on_sqlite(tmp_path: Path) -> None:
    _check(tmp_path / "home")


@pytest.mark.postgres
def test_no_acknowledged_save_is_lost_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    _check(tmp_path / "home", postgres_url)
