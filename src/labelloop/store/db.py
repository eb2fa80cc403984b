"""Engines, sessions and migrations. Nothing here runs at import time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from labelloop.errors import ConfigError

__all__ = ["SQLITE_SYNCHRONOUS", "Store", "migrate", "sqlite_url"]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: SQLite's ``PRAGMA synchronous`` levels a store accepts (the setting ``LABELLOOP_SQLITE_SYNCHRONOUS``)
SQLITE_SYNCHRONOUS = ("NORMAL", "FULL")


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _sqlite_pragmas(synchronous: str, dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # NORMAL (in WAL mode): a committed save survives the process being killed; a power cut or an OS
    # crash may lose the last moments of commits. FULL syncs every commit to the disk (slower writes).
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def make_engine(url: str, sqlite_synchronous: str = "NORMAL") -> Engine:
    """An engine for ``url`` (sqlite:/// or postgresql+psycopg://), with SQLite in WAL mode and
    ``PRAGMA synchronous=`` ``sqlite_synchronous`` (one of :data:`SQLITE_SYNCHRONOUS`)."""
    if sqlite_synchronous not in SQLITE_SYNCHRONOUS:
        raise ConfigError(f"SQLite synchronous level {sqlite_synchronous!r} is not one of {SQLITE_SYNCHRONOUS}",
                          "set LABELLOOP_SQLITE_SYNCHRONOUS to NORMAL or FULL")
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})
            event.listen(engine, "connect", partial(_sqlite_pragmas, sqlite_synchronous))
        else:
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    except Exception as exc:  # sqlalchemy raises several kinds for a bad URL or a missing driver
        raise ConfigError(
            f"cannot use database URL {url!r}: {exc}",
            "expected sqlite:///PATH or postgresql://USER:PASS@HOST/DB (install labelloop[postgres])",
        ) from exc
    return engine


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def run_migration(engine: Engine, action: str, target: str) -> None:
    """Alembic ``upgrade``/``downgrade`` to ``target``.

    All of it is one transaction, table changes included: a migration that fails (or leaves a dangling
    reference) changes nothing. On SQLite, foreign keys are off meanwhile: a batch migration recreates
    a table (copy, drop, rename), and with them on, dropping ``projects`` would cascade to every
    annotation; and the transaction is begun here, as Python's sqlite3 begins one only before a data
    change, so the table changes before it would be committed as they ran.
    """
    from alembic import command

    cfg = _alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        raw: Any = None
        if sqlite:
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # not inside a transaction: SQLite ignores it there
            conn.commit()
            raw = conn.connection.dbapi_connection
            raw.isolation_level = None  # sqlite3 leaves transactions to us: BEGIN below covers DDL too
        try:
            with conn.begin():
                if sqlite:
                    conn.exec_driver_sql("BEGIN")
                cfg.attributes["connection"] = conn
                getattr(command, action)(cfg, target)
                if sqlite and conn.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                    raise ConfigError(f"the database migration to {target} left rows pointing at nothing",
                                      "nothing was changed; report this with the database file")
        finally:
            if sqlite:
                raw.isolation_level = ""  # sqlite3's default again for the pooled connection
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def migrate(engine: Engine) -> None:
    """Bring the schema to Alembic's head revision (no-op when already there)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    run_migration(engine, "upgrade", "head")


class Store:
    """A database: engine plus a session factory. It is given its URL (and SQLite durability level);
    it never reads the settings: :mod:`labelloop.services.projects` does, for its callers."""

    def __init__(self, url: str, *, auto_migrate: bool = True, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.engine = make_engine(url, sqlite_synchronous)
        if auto_migrate:
            try:
                migrate(self.engine)
            except ConfigError:
                raise
            except Exception as exc:
                raise ConfigError(f"cannot open or migrate the database {url!r}: {exc}",
                                  "check the URL, that the server runs, and the file permissions") from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

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

    def dispose(self) -> None:
        self.engine.dispose()
