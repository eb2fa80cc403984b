"""The same server on PostgreSQL: projects, annotations with optimistic concurrency, and jobs."""

from __future__ import annotations

from pathlib import Path

import pytest
from live_server import LiveServer, png_bytes, wait_for_job

pytestmark = pytest.mark.postgres


def test_server_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    server = LiveServer(tmp_path / "home", database_url=postgres_url).start()
    try:
        with server.client() as c:
            slug = c.post("/api/projects", json={"name": "pg", "labels": ["cat"]}).json()["slug"]
            files = [("files", (f"i{i}.png", png_bytes(seed=i), "image/png")) for i in range(2)]
            assert len(c.post(f"/api/projects/{slug}/images", files=files).json()["added"]) == 2
            page = c.get(f"/api/projects/{slug}/images", params={"limit": 1, "total": True}).json()
            assert page["total"] == 2 and page["next_after"] == page["items"][0]["id"]
            image_id = page["items"][0]["id"]
            ann = c.post(f"/api/projects/{slug}/images/{image_id}/annotations",
                         json={"label": "cat", "bbox": [1, 1, 9, 9]}).json()
            url = f"/api/projects/{slug}/annotations/{ann['id']}"
            assert c.patch(url, json={"label": "cat", "bbox": [2, 2, 9, 9], "version": 1}).status_code == 200
            assert c.patch(url, json={"label": "cat", "bbox": [3, 3, 9, 9], "version": 1}).status_code == 409
            job = c.post(f"/api/projects/{slug}/jobs", json={"kind": "sleepy", "params": {"steps": 3}}).json()
            assert wait_for_job(c, slug, job["id"])["status"] == "succeeded"
            assert c.delete(f"/api/projects/{slug}").status_code == 200
    finally:
        server.stop()
