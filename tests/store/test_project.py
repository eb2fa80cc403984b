"""Opening a project folder: a missing database is an error, never a new empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from labelloop.errors import NotFoundError
from labelloop.store.project import Database, init_project, open_project


def test_a_deleted_database_is_reported_not_recreated_empty(tmp_path: Path) -> None:
    root = tmp_path / "p"
    init_project(root, labels=["cat"]).close()
    (root / "labelloop.db").rename(tmp_path / "backup.db")
    with pytest.raises(NotFoundError, match="database .*labelloop.db is missing") as err:
        open_project(root)
    assert "restore it from a backup" in (err.value.hint or "")
    assert not (root / "labelloop.db").exists()  # nothing made in its place
    (tmp_path / "backup.db").rename(root / "labelloop.db")  # restored: opens as before
    ctx = open_project(root, database=Database())
    assert ctx.name == "p"
    ctx.close()
