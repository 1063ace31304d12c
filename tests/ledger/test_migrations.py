from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from canonical import Money
from ledger.database import MIGRATIONS_PATH, Database, alembic_config
from ledger.repository import link_ids, open_exception, record_posting
from ledger.tables import Base

REPO_ROOT = Path(__file__).resolve().parents[2]
LEDGER_TABLES = {table.name for table in Base.metadata.sorted_tables}


def test_migrate_from_empty_creates_every_table_at_head(fresh: Database) -> None:
    assert fresh.current_revision() is None

    fresh.migrate()

    assert LEDGER_TABLES <= set(inspect(fresh.engine).get_table_names())
    assert fresh.current_revision() == Database.head_revision() == "0007"


def test_migrate_twice_is_a_no_op(fresh: Database) -> None:
    fresh.migrate()
    fresh.migrate()
    assert fresh.current_revision() == "0007"


def test_downgrade_to_base_removes_every_ledger_table(fresh: Database) -> None:
    fresh.migrate()
    with fresh.engine.begin() as connection:
        command.downgrade(alembic_config(connection), "base")
    assert not LEDGER_TABLES & set(inspect(fresh.engine).get_table_names())
    assert fresh.current_revision() is None


def test_migrated_schema_matches_the_models_with_no_autogenerate_diff(migrated: Database) -> None:
    with migrated.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


@pytest.mark.parametrize(
    ("table", "column"), [("id_map", "status"), ("posting", "state"), ("exception", "status")]
)
def test_migration_creates_the_check_constraints_autogenerate_cannot_compare(
    db: Database, table: str, column: str
) -> None:
    # Autogenerate ignores CHECK constraints, so prove the migration made them: the database itself refuses.
    with db.session() as session:
        link_ids(session, entity="customer", canonical_key="k", system="xero", external_id="x")
        record_posting(
            session,
            idempotency_key="k",
            erp="xero",
            legal_entity="UK",
            project_id="p",
            period="2025-01",
            target_id="t",
            number=None,
            amount=Money.of("1", "GBP"),
            content_hash="h",
        )
        open_exception(session, dedupe_key="k", process="time_to_billing", owner="pmo", reason="r", record={})
    with pytest.raises(IntegrityError), db.engine.begin() as connection:
        connection.execute(text(f'UPDATE "{table}" SET {column} = :bad'), {"bad": "bogus"})


def test_migrate_does_not_depend_on_the_working_directory(
    fresh: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    fresh.migrate()
    assert fresh.current_revision() == "0007"


def test_concurrent_migrations_of_one_database_both_succeed_once(fresh: Database) -> None:
    url = fresh.engine.url.render_as_string(hide_password=False)
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def start_worker() -> None:
        database = Database.from_url(url)
        try:
            barrier.wait(timeout=10)
            database.migrate()
        except BaseException as error:
            errors.append(error)
        finally:
            database.dispose()

    threads = [threading.Thread(target=start_worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert fresh.current_revision() == "0007"


def test_repo_alembic_ini_points_at_the_packaged_migrations() -> None:
    ini = Config(str(REPO_ROOT / "alembic.ini"))
    by_hand = ScriptDirectory.from_config(ini)
    packaged = ScriptDirectory.from_config(alembic_config())
    assert Path(by_hand.dir).resolve() == MIGRATIONS_PATH == Path(packaged.dir).resolve()
    assert by_hand.get_current_head() == packaged.get_current_head() == "0007"


def test_alembic_command_line_upgrades_the_database_named_by_pssync_database_url(tmp_path: Path) -> None:
    target = tmp_path / "by-hand" / "ledger.sqlite"
    environment = {**os.environ, "PSSYNC_DATABASE_URL": f"sqlite:///{target}"}
    alembic = Path(sys.executable).with_name("alembic")
    completed = subprocess.run(
        [str(alembic), "upgrade", "head"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    database = Database.from_url(f"sqlite:///{target}")
    try:
        assert database.current_revision() == "0007"
    finally:
        database.dispose()
