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
