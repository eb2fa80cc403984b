"""Test helpers shared across the tree: the shared datasets, and the real `labelloop` command."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

__all__ = ["LABELLOOP", "SHARED_DATASETS", "plant_duplicate", "postgres_database", "run", "shared_dataset"]

SHARED_DATASETS = Path(os.environ.get("LABELLOOP_SHARED_DATASETS",
                                      Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def shared_dataset(name: str) -> Path:
    """Path of a dataset in ../shared/datasets, or skip the test cleanly when it is absent."""
    path = SHARED_DATASETS / name
    if not path.exists():
        pytest.skip(f"shared dataset {name} not available at {path}")
    return path


LABELLOOP = str(Path(sys.executable).parent / "labelloop")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LABELLOOP_DEBUG": ""}
    return subprocess.run([LABELLOOP, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@contextmanager
def postgres_database(prefix: str = "labelloop_test") -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database on the test server (dropped afterwards), or skip."""
    base = os.environ.get("LABELLOOP_TEST_POSTGRES_URL")
    if not base:
        pytest.skip("LABELLOOP_TEST_POSTGRES_URL not set (make test starts a PostgreSQL server)")
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def plant_duplicate(ctx: Any) -> tuple[int, dict[str, Any]]:
    """A second box over the first annotation of a training image, as a double click makes:
    ``(image id, the duplicate)``."""
    from sqlalchemy import select

    from labelloop.services.annotations import AnnotationInput, create_annotation, image_annotations
    from labelloop.store.tables import Image

    with ctx.store.session() as s:
        image_id = s.scalars(select(Image.id).where(Image.project_id == ctx.id, Image.split == "train")).first()
    a = image_annotations(ctx, image_id)[0]
    x1, y1, x2, y2 = a["bbox"]
    dup = create_annotation(ctx, image_id, AnnotationInput(label=a["label"], bbox=(x1 + 0.5, y1, x2, y2 + 0.5)),
                            actor="double-clicker")
    return image_id, dup
