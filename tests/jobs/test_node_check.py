"""``labelloop serve --check``: what a node sees (database, server folder, an image), without changing
anything; each missing piece is named with its fix. The Ray side (one report per node of a real
cluster) is in test_ray_executor.py."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from factories import make_dataset
from helpers import LABELLOOP, postgres_database
from labelloop.jobs.node_check import check_database, check_home, check_image, deployment_report
from labelloop.services.importing import import_dataset
from labelloop.services.projects import ProjectRegistry, server_database_url


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _home_with_an_image(tmp_path: Path) -> tuple[Path, str]:
    home = tmp_path / "home"
    home.mkdir()
    url = server_database_url(home)
    registry = ProjectRegistry(home, url)
    try:
        slug = registry.create("cells")["slug"]
        import_dataset(registry.open(slug), make_dataset(tmp_path / "src", n_images=2))
    finally:
        registry.close()
    return home, url


def _check(home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LABELLOOP_")}
    return subprocess.run([LABELLOOP, "serve", "--check", "--home", str(home), "--json"], capture_output=True,
                          text=True, timeout=120, env={**clean, **env})


def test_a_working_server_folder_reports_one_healthy_node(tmp_path: Path) -> None:
    home, url = _home_with_an_image(tmp_path)
    report = deployment_report(home, url, executor="local")
    assert report["ok"] and report["executor"] == "local"
    (node,) = report["nodes"]
    assert node["role"] == "server" and node["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {c["name"]: c["ok"] for c in node["checks"]} == {"database": True, "home": True, "images": True}
    image = Path(report["image"])
    assert image.is_file() and home in image.parents  # a stored image of the server's project
    assert not list(home.glob(".node-check-*"))  # the write probe leaves nothing behind


def test_each_missing_piece_is_named_with_its_fix_and_nothing_is_created(tmp_path: Path) -> None:
    missing_db = tmp_path / "elsewhere" / "server.db"
    db = check_database(f"sqlite:///{missing_db}")
    assert not db["ok"] and "no SQLite file" in db["detail"] and "shared path" in db["detail"]
    assert not missing_db.exists() and not missing_db.parent.exists()
    pg = check_database(f"postgresql+psycopg://team:secret@127.0.0.1:{_closed_port()}/labelloop")
    assert not pg["ok"] and "does not answer" in pg["detail"] and "secret" not in pg["detail"]
    assert not check_database("not a url")["ok"]
    home = check_home(str(tmp_path / "not-mounted"))
    assert not home["ok"] and "same path on every node" in home["detail"]
    image = check_image(str(tmp_path / "gone.jpg"))
    assert not image["ok"] and "storage every node mounts" in image["detail"]
    assert check_image(None)["ok"]  # a new server has no image to read yet


def test_postgresql_that_answers_passes() -> None:
    with postgres_database("labelloop_check") as url:
        result = check_database(url)
    assert result["ok"] and result["detail"].startswith("postgresql")


def test_serve_check_exits_1_and_says_why_when_the_database_is_unreachable(tmp_path: Path) -> None:
    home, _ = _home_with_an_image(tmp_path)
    ok = _check(home)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["nodes"][0]["ok"]
    bad = _check(home, LABELLOOP_DATABASE_URL=f"postgresql+psycopg://u:p@127.0.0.1:{_closed_port()}/x")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
