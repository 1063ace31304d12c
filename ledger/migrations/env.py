"""Alembic environment for the ledger.

Programmatic use (`Database.migrate()`) hands over a connection in `config.attributes["connection"]`.
From the command line (`alembic upgrade head` with the repo's alembic.ini) the URL comes from
`sqlalchemy.url` if set, else PSSYNC_DATABASE_URL, else the settings default, and the engine is built by
`Database.from_url` so SQLite gets the same tuning as the application.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from config import Settings
from ledger.database import Database
from ledger.tables import Base

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    configured = config.get_main_option("sqlalchemy.url")
    if configured:
        return configured
    default = Settings.model_fields["database_url"].default
    return os.environ.get("PSSYNC_DATABASE_URL", default)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    database = Database.from_url(_url())
    try:
        with database.engine.begin() as connection:
            _run(connection)
    finally:
        database.dispose()


if config.config_file_name is not None and config.get_section("loggers") is not None:
    fileConfig(config.config_file_name)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
