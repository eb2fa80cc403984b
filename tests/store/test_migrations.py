"""Every Alembic migration goes up and down on real SQLite and PostgreSQL, and the schema at head
is the one the tables declare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, inspect, select

from helpers import postgres_database
from labelloop.store.db import MIGRATIONS_DIR, make_engine, run_migration, sqlite_url
from labelloop.store.tables import Base


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _run(engine: Engine, action: str, target: str) -> None:
    run_migration(engine, action, target)  # the path Store takes (on SQLite: foreign keys off meanwhile)


def _columns(engine: Engine) -> dict[str, set[str]]:
    found = inspect(engine)
    return {t: {c["name"] for c in found.get_columns(t)} for t in found.get_table_names() if t != "alembic_version"}


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = make_engine(sqlite_url(tmp_path / "m.db"))
        yield eng
        eng.dispose()
        return
    with postgres_database("labelloop_migrate") as url:
        eng = make_engine(url)
        yield eng
        eng.dispose()


def test_each_revision_goes_up_and_down_and_head_matches_the_tables(engine: Engine) -> None:
    revisions = [r.revision for r in ScriptDirectory.from_config(_config()).walk_revisions()][::-1]
    assert len(revisions) >= 3
    shapes = []
    for rev in revisions:  # one step up at a time, remembering each schema
        _run(engine, "upgrade", rev)
        shapes.append(_columns(engine))
    declared = {t.name: {c.name for c in t.columns} for t in Base.metadata.sorted_tables}
    assert shapes[-1] == declared
    for k in range(len(revisions) - 1, 0, -1):  # one step down at a time: back to the schema before
        _run(engine, "downgrade", revisions[k - 1])
        assert _columns(engine) == shapes[k - 1], f"downgrade of {revisions[k]} does not undo it"
    _run(engine, "downgrade", "base")
    assert _columns(engine) == {}
    _run(engine, "upgrade", "head")
    assert _columns(engine) == declared


def test_an_existing_project_becomes_one_layer_with_every_annotation_kept(engine: Engine, tmp_path: Path) -> None:
    from sqlalchemy import text

    from labelloop.services.layers import layers_of
    from labelloop.store.db import Store
    from labelloop.store.project import context_for
    from labelloop.store.tables import Annotation, Project

    _run(engine, "upgrade", "0002")  # before images.damaged (0003 recreates the images table on SQLite)
    now = "2026-12-01 10:00:00"
    with engine.begin() as conn:
        for pid, task in ((1, "detect"), (2, "regions")):
            conn.execute(text("INSERT INTO projects (id, uid, name, task, settings, created_at) "
                              "VALUES (:id, :uid, :name, :task, '{}', :now)"),
                         {"id": pid, "uid": f"u{pid}", "name": f"p{pid}", "task": task, "now": now})
            conn.execute(text("INSERT INTO label_classes (id, project_id, name, color, position, active, created_at)"
                              " VALUES (:id, :pid, 'c', '#fff', 0, true, :now)"), {"id": pid, "pid": pid, "now": now})
            conn.execute(text("INSERT INTO images (id, project_id, file_name, storage_path, linked, width, height, "
                              "sha256, status, created_at, updated_at) VALUES (:id, :pid, 'a.jpg', 'images/a.jpg', "
                              "false, 10, 10, 'x', 'annotated', :now, :now)"), {"id": pid, "pid": pid, "now": now})
            for k in range(3):
                conn.execute(text(
                    "INSERT INTO annotations (project_id, image_id, class_id, x1, y1, x2, y2, iscrowd, source, "
                    "author, attributes, created_at, updated_at, version) VALUES (:pid, :pid, :pid, :k, 0, 5, 5, "
                    "false, 'human', 'a', '{}', :now, :now, 1)"), {"pid": pid, "k": k, "now": now})
    _run(engine, "upgrade", "head")
    store = Store(str(engine.url.render_as_string(hide_password=False)), auto_migrate=False)
    try:
        with store.session() as s:
            assert s.scalar(select(func.count()).select_from(Annotation)) == 6
            contexts = [context_for(tmp_path, store, s, s.get(Project, pid)) for pid in (1, 2)]
        for ctx, name, kind in zip(contexts, ("objects", "regions"), ("detect", "regions"), strict=True):
            assert ctx.layer == name and ctx.task == kind and ctx.project_id == ctx.id
            assert [(i.name, i.kind, i.store_id) for i in layers_of(ctx)] == [(name, kind, ctx.id)]
    finally:
        store.dispose()
    _run(engine, "downgrade", "0002")  # and back: the projects and their annotations stay
    with engine.begin() as conn:
        assert conn.execute(text("SELECT count(*) FROM annotations")).scalar() == 6


def test_a_migration_that_fails_midway_changes_nothing(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """0004 recreates ``projects`` (a batch copy), creates ``layers`` and fails at its data step: the
    database is left exactly at 0003, no half-made table (SQLite too, whose driver commits DDL as it runs
    unless the transaction is begun explicitly)."""
    from alembic.operations import Operations

    _run(engine, "upgrade", "0003")
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO projects (uid, name, task, settings, created_at) "
                             "VALUES ('u1', 'kept', 'detect', '{}', CURRENT_TIMESTAMP)")
    before = _columns(engine)
    execute = Operations.execute

    def failing(self: Operations, sql: object, *args: object, **kwargs: object) -> object:
        if str(sql).startswith("INSERT INTO layers"):
            raise RuntimeError("the disk is full")
        return execute(self, sql, *args, **kwargs)

    monkeypatch.setattr(Operations, "execute", failing)
    with pytest.raises(RuntimeError, match="disk is full"):
        _run(engine, "upgrade", "head")
    assert _columns(engine) == before  # no layers table, projects as it was, no _alembic_tmp_ copy
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == "0003"
        assert conn.exec_driver_sql("SELECT name FROM projects").scalar() == "kept"
    monkeypatch.undo()
    _run(engine, "upgrade", "head")  # and it goes through once the cause is gone
    assert "layers" in _columns(engine)
