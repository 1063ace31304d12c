"""Empty test databases of either dialect, created on demand and dropped when the test session ends."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.engine import Engine

POSTGRES_ADMIN_URL = os.environ.get(
    "PSSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
DIALECTS = [pytest.param("sqlite"), pytest.param("postgresql", marks=pytest.mark.postgres)]


class EmptyDatabases:
    """Creates empty databases of either dialect and removes them when the test session ends."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._admin: Engine | None = None
        self._postgres_unavailable: str | None = None
        self._created: list[str] = []

    def url(self, dialect: str) -> str:
        name = f"pssync_test_{uuid.uuid4().hex[:12]}"
        if dialect == "sqlite":
            return f"sqlite:///{self._directory / name}.sqlite"
        admin = self._postgres()
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        self._created.append(name)
        return make_url(POSTGRES_ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def _postgres(self) -> Engine:
        if self._postgres_unavailable is None and self._admin is None:
            admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as connection:
                    connection.execute(text("SELECT 1"))
            except Exception as error:
                admin.dispose()
                self._postgres_unavailable = f"{type(error).__name__}: {error}"
            else:
                self._admin = admin
        if self._admin is None:
            message = (
                f"PostgreSQL at {POSTGRES_ADMIN_URL} is unreachable ({self._postgres_unavailable}). "
                "Start it, or set PSSYNC_SKIP_POSTGRES=1 to skip the PostgreSQL variants on purpose."
            )
            if os.environ.get("PSSYNC_SKIP_POSTGRES") == "1":
                pytest.skip(message)
            pytest.fail(message)
        return self._admin

    def drop_all(self) -> None:
        if self._admin is None:
            return
        with self._admin.connect() as connection:
            for name in self._created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self._admin.dispose()
