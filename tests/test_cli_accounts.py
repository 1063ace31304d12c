"""`pssync accounts`: finance lists, sets and removes account rules from a shell, as the token's person."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

from cli import main
from config import Settings
from ingress.identity import mint_dev_token
from ledger.account_mapping import list_account_mappings
from ledger.database import Database
from ledger.records import AccountRecord
from ledger.repository import upsert_accounts


@pytest.fixture
def ledger_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    database = Database.from_url(url)
    database.migrate()
    with database.session() as session:
        upsert_accounts(
            session,
            system="xero",
            accounts=[
                AccountRecord(system="xero", code="200", name="Sales", type="REVENUE"),
                AccountRecord(system="xero", code="299", name="Old", type="REVENUE", active=False),
            ],
        )
    database.dispose()
    monkeypatch.setenv("PSSYNC_DATABASE_URL", url)
    monkeypatch.setenv("PSSYNC_ENVIRONMENT", "test")
    return url


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
            code = 0
        except SystemExit as exit_:
            code = int(exit_.code or 0)
    return code, out.getvalue(), err.getvalue()


def rules(url: str) -> list[tuple[str, str, str, str, str]]:
    database = Database.from_url(url)
    try:
        with database.session(read_only=True) as session:
            return [
                (m.legal_entity, m.rule.kind, m.rule.key, m.rule.account_code, m.updated_by)
                for m in list_account_mappings(session)
            ]
    finally:
        database.dispose()


def test_finance_sets_lists_and_removes_a_rule_as_the_person_of_the_token(ledger_url: str) -> None:
    token = mint_dev_token(Settings(), "Fiona Finance", "finance")

    set_code, set_out, _ = run("accounts", "set", "UK", "service", "*", "--account", "200", "--token", token)
    list_code, listed, _ = run("accounts", "list", "--entity", "UK")
    kept = rules(ledger_url)
    removed_code, _, _ = run("accounts", "remove", "UK", "service", "*", "--token", token)

    assert set_code == 0 and "set by Fiona Finance <" in set_out
    assert list_code == 0 and "200 Sales" in listed and "active" in listed
    assert [(e, k, key, a) for e, k, key, a, _ in kept] == [("UK", "service", "*", "200")]
    assert kept[0][4].startswith("Fiona Finance <")
    assert removed_code == 0 and rules(ledger_url) == []


def test_an_archived_account_is_refused_and_nothing_is_kept(ledger_url: str) -> None:
    token = mint_dev_token(Settings(), "Fiona Finance", "finance")

    code, _, err = run("accounts", "set", "UK", "role", "Consultant", "--account", "299", "--token", token)

    assert code == 1 and "holds it archived" in err
    assert rules(ledger_url) == []


def test_only_finance_changes_the_mapping(ledger_url: str) -> None:
    token = mint_dev_token(Settings(), "Olly Ops", "ops")

    code, _, err = run("accounts", "set", "UK", "service", "*", "--account", "200", "--token", token)

    assert code == 2 and "may not change the account mapping" in err
    assert rules(ledger_url) == []
