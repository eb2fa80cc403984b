"""Shared fixtures: projects on a real SQLite file, or on a real PostgreSQL server when
``LABELLOOP_TEST_POSTGRES_URL`` is set (``make test`` starts one)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from labelloop.services.projects import new_project
from labelloop.settings import get_settings
from labelloop.store.project import ProjectContext


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    from helpers import postgres_database

    with postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Runs a test once on SQLite and once on PostgreSQL."""
    url = "" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    monkeypatch.setenv("LABELLOOP_DATABASE_URL", url)
    get_settings.cache_clear()
    yield request.param
    get_settings.cache_clear()


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[ProjectContext]:
    ctx = new_project(tmp_path / "proj", task="detect", labels=["cat", "dog", "bird"])
    yield ctx
    ctx.close()
