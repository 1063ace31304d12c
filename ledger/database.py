"""Engine, sessions and migrations for the ledger database (SQLite by default, PostgreSQL by URL).

Built once in the composition root (worker, ingress, CLI) with `Database.from_url(settings.database_url)`;
nothing here runs at import time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

MIGRATIONS_PATH = Path(__file__).resolve().with_name("migrations")

# Any constant works; it only has to be the same for every process migrating the same database.
_MIGRATION_LOCK_KEY = 0x7053_796E_634C_6564  # ASCII "pSyncLed"

_READ_ONLY = "pssync_read_only"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, independent of the working directory.

    With `connection`, env.py migrates through it (inside its transaction) instead of opening its own.
    """
    config = Config()
    # ConfigParser would read a '%' in the path as interpolation.
    config.set_main_option("script_location", str(MIGRATIONS_PATH).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


class Database:
    """One engine and its session factories."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        read_only_options: dict[str, Any] = {_READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            read_only_options["postgresql_readonly"] = True
        self._read_only_sessions = sessionmaker(
            engine.execution_options(**read_only_options), expire_on_commit=False
        )

    @classmethod
    def from_url(cls, url: str | URL, *, busy_timeout_seconds: float = 30.0, echo: bool = False) -> Database:
        """`sqlite:///path` (the file's directory is created) or `postgresql+psycopg://...`."""
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            return cls(_sqlite_engine(parsed, busy_timeout_seconds=busy_timeout_seconds, echo=echo))
        if backend == "postgresql":
            if parsed.drivername == "postgresql":
                # SQLAlchemy would otherwise pick psycopg2, which ps-sync does not install.
                parsed = parsed.set(drivername="postgresql+psycopg")
            # pre-ping: a pooled connection dropped by a PostgreSQL restart is replaced, not handed out.
            return cls(create_engine(parsed, pool_pre_ping=True, echo=echo))
        raise ValueError(
            f"unsupported ledger database {parsed.render_as_string(hide_password=True)!r}: "
            "use sqlite:///path/to/file.sqlite or postgresql+psycopg://user@host/dbname"
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        """A session in one transaction: committed when the block ends, rolled back if it raises.

        `read_only=True` refuses writes on both dialects and, on SQLite, takes no write lock, so readers
        (ops page, CLI) never wait for writers.
        """
        factory = self._read_only_sessions if read_only else self._sessions
        with factory() as session, session.begin():
            yield session

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema up to `revision` (Alembic upgrade), in one transaction.

        Concurrent callers (several workers starting at once) are serialised: on PostgreSQL by an
        advisory lock, on SQLite by the write lock every write transaction takes.
        """
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
            command.upgrade(alembic_config(connection), revision)

    def current_revision(self) -> str | None:
        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    @staticmethod
    def head_revision() -> str | None:
        return ScriptDirectory.from_config(alembic_config()).get_current_head()

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_engine(url: URL, *, busy_timeout_seconds: float, echo: bool) -> Engine:
    in_memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
    options: dict[str, Any] = {
        # Activities call the ledger from a thread pool; the pool lends a connection to one thread at a time.
        "connect_args": {"check_same_thread": False, "timeout": busy_timeout_seconds},
        "echo": echo,
    }
    if in_memory:
        # Every session must see the same in-memory database; good for single-threaded tests and demos only.
        options["poolclass"] = StaticPool
    elif url.database is not None:
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **options)
    busy_timeout_ms = int(busy_timeout_seconds * 1000)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT; SQLAlchemy's documented remedy is to turn it
        # off and emit BEGIN ourselves (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                # WAL lets readers proceed while one writer writes; NORMAL sync is durable in WAL mode.
                _switch_to_wal(cursor, within=busy_timeout_seconds)
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        read_only = bool(connection.get_execution_options().get(_READ_ONLY))
        connection.exec_driver_sql(f"PRAGMA query_only={int(read_only)}")
        # A write transaction takes the write lock up front: a deferred one that read first could not
        # upgrade once another writer had committed (SQLITE_BUSY without waiting), which is exactly the
        # concurrent link_ids case.
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cursor: Any, *, within: float) -> None:
    """SQLite answers "database is locked" at once, without its busy handler, when two connections switch a
    new database to WAL together (the worker and the ingress starting on a fresh ledger): wait and retry
    for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + within
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
