"""Every Alembic migration goes up and down on real SQLite and PostgreSQL, and the schema at head
is the one the tables declare."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from helpers import postgres_database
from labelloop.store.db import MIGRATIONS_DIR, make_engine, sqlite_url
from labelloop.store.tables import Base


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def _run(engine: Engine, action: str, target: str) -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, action)(cfg, target)


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
