"""Engines, sessions and migrations. Nothing here runs at import time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from labelloop.errors import ConfigError

__all__ = ["Store", "migrate", "sqlite_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (sqlite:/// or postgresql+psycopg://), with SQLite in WAL mode."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except Exception as exc:  # sqlalchemy raises several kinds for a bad URL or a missing driver
        raise ConfigError(
            f"cannot use database URL {url!r}: {exc}",
            "expected sqlite:///PATH or postgresql://USER:PASS@HOST/DB (install labelloop[postgres])",
        ) from exc
    return engine


def migrate(engine: Engine) -> None:
    """Bring the schema to Alembic's head revision (no-op when already there)."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class _SqliteWriterGate:
    """One SQLite writer at a time inside this process, queued on a Python lock.

    SQLite lets one connection write at a time; the others wait in its busy handler, which polls with
    sleeps growing to 100 ms, so a few concurrent saves pile up tens of milliseconds of pure waiting.
    Python's sqlite3 opens the write transaction only at the first INSERT/UPDATE/DELETE, so taking this
    lock just before a session's first write covers the whole write transaction: a waiting thread wakes
    the moment the previous writer commits. Other processes (the job worker) still meet the busy handler.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()

    def install(self, factory: sessionmaker[Session]) -> None:
        event.listen(factory, "before_flush", self._before_flush)
        event.listen(factory, "do_orm_execute", self._on_execute)

    def _acquire(self, session: Session) -> None:
        if not session.info.get("sqlite_writer"):
            self._lock.acquire()
            session.info["sqlite_writer"] = True

    def _before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        self._acquire(session)

    def _on_execute(self, state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            self._acquire(state.session)

    def release(self, session: Session) -> None:
        if session.info.pop("sqlite_writer", False):
            self._lock.release()


class Store:
    """A database: engine plus a session factory."""

    def __init__(self, url: str, *, auto_migrate: bool = True) -> None:
        self.url = url
        self.engine = make_engine(url)
        if auto_migrate:
            try:
                migrate(self.engine)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"cannot open or migrate the database {url!r}: {exc}",
                                  "check the URL, that the server runs, and the file permissions") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._writer_gate: _SqliteWriterGate | None = None
        if self.is_sqlite:
            self._writer_gate = _SqliteWriterGate()
            self._writer_gate.install(self._sessions)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: commits on success, rolls back everything on any error."""
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()
            if self._writer_gate is not None:
                self._writer_gate.release(session)

    def dispose(self) -> None:
        self.engine.dispose()
