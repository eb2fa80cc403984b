"""The store's database layer on real SQLite: all-or-nothing sessions, concurrent writers, WAL readers."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from labelloop.store.db import Store, sqlite_url
from labelloop.store.tables import Project


def _store(tmp_path: Path) -> Store:
    return Store(sqlite_url(tmp_path / "db.sqlite"))


def _count(store: Store) -> int:
    with store.session() as s:
        return int(s.scalar(select(func.count()).select_from(Project)) or 0)


def test_failed_session_rolls_back_and_frees_the_writer_slot(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with pytest.raises(RuntimeError), store.session() as s:
        s.add(Project(uid="a" * 32, name="lost", task="detect", settings={}))
        s.flush()
        raise RuntimeError("boom")
    assert _count(store) == 0
    # another thread can write at once: the failed session released its write lock
    done = threading.Event()

    def write() -> None:
        with store.session() as s:
            s.add(Project(uid="b" * 32, name="kept", task="detect", settings={}))
        done.set()

    thread = threading.Thread(target=write)
    thread.start()
    assert done.wait(10)
    thread.join()
    assert _count(store) == 1
    store.dispose()


def test_concurrent_writers_all_land_and_never_overlap(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.session() as s:
        s.add(Project(uid="c" * 32, name="counter", task="detect", settings={"n": 0}))
    inside, overlap, errors = [0], [0], []
    guard = threading.Lock()

    def writer(k: int) -> None:
        try:
            for i in range(25):
                with store.session() as s:
                    s.add(Project(uid=f"{k:02d}{i:030d}", name=f"w{k}", task="detect", settings={}))
                    s.flush()  # the write lock is taken here, and held until commit
                    with guard:
                        inside[0] += 1
                        overlap[0] = max(overlap[0], inside[0])
                    # a bulk UPDATE statement (no flush) inside the same write transaction
                    s.execute(update(Project).where(Project.name == "counter").values(name="counter"))
                    with guard:
                        inside[0] -= 1
        except Exception as exc:  # collected and asserted below: a thread's error must fail the test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert overlap[0] == 1
    assert _count(store) == 1 + 8 * 25
    store.dispose()


def test_read_only_sessions_do_not_wait_for_a_writer(tmp_path: Path) -> None:
    store = _store(tmp_path)
    with store.session() as s:
        s.add(Project(uid="d" * 32, name="one", task="detect", settings={}))
    read: list[int] = []
    with store.session() as s:
        s.add(Project(uid="e" * 32, name="two", task="detect", settings={}))
        s.flush()  # this thread now holds the write lock, with an open write transaction
        reader = threading.Thread(target=lambda: read.append(_count(store)))
        reader.start()
        reader.join(10)
        assert not reader.is_alive()
    assert read == [1]  # WAL: the reader saw the last committed state without waiting
    assert _count(store) == 2
    store.dispose()


@pytest.mark.parametrize(("level", "pragma"), [("NORMAL", 1), ("FULL", 2)])
def test_store_uses_the_durability_level_it_is_given(tmp_path: Path, level: str, pragma: int) -> None:
    store = Store(sqlite_url(tmp_path / "db.sqlite"), sqlite_synchronous=level)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == pragma
    finally:
        store.dispose()


def test_store_refuses_an_unknown_durability_level(tmp_path: Path) -> None:
    from labelloop.errors import ConfigError

    with pytest.raises(ConfigError, match="NORMAL or FULL"):
        Store(sqlite_url(tmp_path / "db.sqlite"), sqlite_synchronous="OFF; DROP TABLE x")


def test_the_store_reads_no_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Given no database, a project lives in its folder's SQLite file, whatever the environment says;
    the settings are followed one layer up (services.projects)."""
    from labelloop.services.projects import load_project, new_project
    from labelloop.settings import get_settings
    from labelloop.store.project import Database, init_project, open_project

    elsewhere = sqlite_url(tmp_path / "shared.db")
    monkeypatch.setenv("LABELLOOP_DATABASE_URL", elsewhere)
    monkeypatch.setenv("LABELLOOP_SQLITE_SYNCHRONOUS", "FULL")
    get_settings.cache_clear()
    own = init_project(tmp_path / "own", labels=["cat"])
    assert own.store.url == sqlite_url(tmp_path / "own" / "labelloop.db")
    with own.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # the store's default, not the setting
    own.close()
    followed = new_project(tmp_path / "followed", labels=["dog"])
    assert followed.store.url == elsewhere and not (tmp_path / "followed" / "labelloop.db").exists()
    with followed.store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    followed.close()
    again = load_project(tmp_path / "followed")
    assert again.name == "followed"
    again.close()
    explicit = open_project(tmp_path / "followed", database=Database(url=elsewhere))
    assert explicit.uid == again.uid
    explicit.close()
    get_settings.cache_clear()
