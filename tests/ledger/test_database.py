from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from ledger.database import Database
from ledger.repository import find_external_id, link_ids
from ledger.tables import IdMap

from .support import EmptyDatabases


def _link(session: Session) -> None:
    link_ids(session, entity="customer", canonical_key="salesforce:001A", system="xero", external_id="C-1")


def _linked_id(session: Session) -> str | None:
    return find_external_id(session, entity="customer", canonical_key="salesforce:001A", system="xero")


def test_session_commits_when_the_block_ends(db: Database) -> None:
    with db.session() as session:
        _link(session)
    with db.session() as session:
        assert _linked_id(session) == "C-1"


def test_session_rolls_back_everything_when_the_block_raises(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"), db.session() as session:
        _link(session)
        raise RuntimeError("boom")
    with db.session() as session:
        assert _linked_id(session) is None


def test_read_only_session_refuses_writes(db: Database) -> None:
    with pytest.raises(DBAPIError, match=r"read-?only"), db.session(read_only=True) as session:
        _link(session)


def test_read_only_session_does_not_leave_the_pooled_connection_read_only(db: Database) -> None:
    with db.session(read_only=True) as session:
        session.execute(select(IdMap)).all()
    with db.session() as session:
        _link(session)  # would raise if the read-only setting had leaked into the pool


def test_instants_read_back_as_the_same_moment_in_utc(db: Database) -> None:
    amsterdam = datetime(2025, 3, 30, 3, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
    with db.session() as session:
        session.add(
            IdMap(
                entity="customer",
                canonical_key="k",
                system="xero",
                external_id="x",
                status="active",
                created_at=amsterdam,
                updated_at=amsterdam,
            )
        )
    with db.session() as session:
        if db.dialect == "postgresql":
            # The connection's time zone must not leak into what callers see.
            session.execute(text("SET LOCAL TIME ZONE 'Asia/Tokyo'"))
        stored = session.scalars(select(IdMap.created_at)).one()
    assert stored == amsterdam
    assert stored.tzinfo is UTC
    assert stored.hour == 1


def test_naive_datetimes_are_refused(db: Database) -> None:
    naive = datetime(2025, 1, 1, 12, 0)
    with pytest.raises(StatementError, match="naive datetime"), db.session() as session:
        session.add(
            IdMap(
                entity="customer",
                canonical_key="k",
                system="xero",
                external_id="x",
                status="active",
                created_at=naive,
                updated_at=naive,
            )
        )
        session.flush()


def test_sqlite_file_gets_wal_foreign_keys_and_busy_timeout_and_its_directory(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "deeper" / "ledger.sqlite"
    database = Database.from_url(f"sqlite:///{target}", busy_timeout_seconds=7)
    try:
        with database.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert target.exists()
    finally:
        database.dispose()


def test_in_memory_sqlite_is_shared_by_every_session() -> None:
    database = Database.from_url("sqlite://")
    try:
        database.migrate()
        with database.session() as session:
            _link(session)
        with database.session() as session:
            assert _linked_id(session) == "C-1"
    finally:
        database.dispose()


def test_plain_postgresql_url_uses_the_installed_psycopg_driver() -> None:
    database = Database.from_url("postgresql://postgres@127.0.0.1:5432/test")
    try:
        assert database.engine.url.drivername == "postgresql+psycopg"
    finally:
        database.dispose()


def test_unsupported_database_url_is_refused_with_the_supported_forms() -> None:
    with pytest.raises(ValueError, match=r"unsupported ledger database .*sqlite:///.*postgresql\+psycopg://"):
        Database.from_url("mysql+pymysql://user:secret@db/ledger")


@pytest.mark.postgres
def test_postgres_connection_killed_by_the_server_is_replaced_by_pre_ping(
    empty_databases: EmptyDatabases,
) -> None:
    database = Database.from_url(empty_databases.url("postgresql"))
    outsider = create_engine(database.engine.url, poolclass=NullPool)
    try:
        with database.session() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with outsider.begin() as connection:
            assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar_one()
        with database.session() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        outsider.dispose()
        database.dispose()
