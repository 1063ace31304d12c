"""Ledger fixtures: every test that takes `db` runs on SQLite (a temp file) and on PostgreSQL.

PostgreSQL is the local server (PSSYNC_TEST_POSTGRES_URL, default postgres@127.0.0.1:5432/test). Each test
session creates its own `pssync_test_<random>` databases and drops them at the end. If the server is not
reachable the PostgreSQL variants fail, loudly, unless PSSYNC_SKIP_POSTGRES=1 says to skip them.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledger.database import Database
from ledger.tables import Base

from .support import DIALECTS, EmptyDatabases


@pytest.fixture(scope="session")
def empty_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmptyDatabases]:
    databases = EmptyDatabases(tmp_path_factory.mktemp("ledger"))
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session", params=DIALECTS)
def migrated(request: pytest.FixtureRequest, empty_databases: EmptyDatabases) -> Iterator[Database]:
    database = Database.from_url(empty_databases.url(request.param))
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def db(migrated: Database) -> Iterator[Database]:
    """The migrated database for this dialect, emptied after each test."""
    yield migrated
    with migrated.engine.begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture(params=DIALECTS)
def fresh(request: pytest.FixtureRequest, empty_databases: EmptyDatabases) -> Iterator[Database]:
    """A brand-new, unmigrated database for this dialect."""
    database = Database.from_url(empty_databases.url(request.param))
    yield database
    database.dispose()
