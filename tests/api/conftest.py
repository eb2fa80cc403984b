from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from live_server import LiveServer, png_bytes


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    srv = LiveServer(tmp_path_factory.mktemp("serve") / "home").start()
    yield srv
    srv.stop()
    assert not srv.contract_errors(), "responses that broke their declared model:\n" + "\n".join(srv.contract_errors())


@pytest.fixture(scope="session")
def admin(server: LiveServer) -> Iterator[httpx.Client]:
    client = server.client()
    yield client
    client.close()


@pytest.fixture
def project(admin: httpx.Client, request: pytest.FixtureRequest) -> str:
    """A fresh project with classes cat, dog and three uploaded images."""
    name = "p-" + request.node.name.lower().replace("[", "-").replace("]", "")[:40]
    slug = admin.post("/api/projects", json={"name": name, "labels": ["cat", "dog"]}).json()["slug"]
    files = [("files", (f"img{i}.png", png_bytes(seed=i), "image/png")) for i in range(3)]
    response = admin.post(f"/api/projects/{slug}/images", files=files)
    assert response.status_code == 201, response.text
    return slug
