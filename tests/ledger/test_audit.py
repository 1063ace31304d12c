from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from canonical import Money
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.repository import append_audit, audit_trail


def _append(
    db: Database,
    *,
    key: str = "P-100:2025-03",
    workflow_id: str = "time-to-billing:P-100:2025-03",
    action: str = "invoice_posted",
) -> None:
    with db.session() as session:
        append_audit(
            session,
            workflow_id=workflow_id,
            run_id="run-1",
            actor="ps-sync",
            action=action,
            entity="invoice",
            key=key,
            detail={"n": action},
        )


def test_append_audit_returns_the_stored_entry_with_an_id_and_utc_time(db: Database) -> None:
    with db.session() as session:
        entry = append_audit(
            session,
            workflow_id="wf",
            run_id="run",
            actor="alice@finance",
            action="approved",
            entity="invoice",
            key="P-100:2025-03",
            detail={"threshold": "5000"},
        )
    assert entry.id > 0
    assert entry.occurred_at.utcoffset() is not None
    with db.session() as session:
        assert audit_trail(session, key="P-100:2025-03") == [entry]


def test_audit_detail_keeps_money_and_dates_exact_as_json_text(db: Database) -> None:
    with db.session() as session:
        append_audit(
            session,
            workflow_id=None,
            run_id=None,
            actor="ops",
            action="posted",
            entity="invoice",
            key="k",
            detail={"total": Money.of("1234.5678", "GBP"), "rate": Decimal("0.1"), "on": date(2025, 3, 31)},
        )
    with db.session() as session:
        (entry,) = audit_trail(session, key="k")
    assert entry.detail == {
        "total": {"amount": "1234.5678", "currency": "GBP"},
        "rate": "0.1",
        "on": "2025-03-31",
    }
    assert entry.workflow_id is None


def test_audit_trail_is_newest_first_and_filters_by_key_and_workflow(db: Database) -> None:
    _append(db, action="first")
    _append(db, action="second")
    _append(db, action="elsewhere", key="P-200:2025-03", workflow_id="time-to-billing:P-200:2025-03")
    with db.session() as session:
        assert [e.action for e in audit_trail(session, key="P-100:2025-03")] == ["second", "first"]
        assert [e.action for e in audit_trail(session, workflow_id="time-to-billing:P-200:2025-03")] == [
            "elsewhere"
        ]
        assert [e.action for e in audit_trail(session)] == ["elsewhere", "second", "first"]
        assert [e.action for e in audit_trail(session, limit=1)] == ["elsewhere"]


@pytest.mark.parametrize(
    ("detail", "message"),
    [
        (["not", "a", "mapping"], "detail must be a mapping or a pydantic model"),
        ({"bad": float("nan")}, "detail cannot be stored as JSON"),
        ({"bad": object()}, "detail cannot be stored as JSON"),
    ],
)
def test_append_audit_refuses_detail_that_is_not_a_json_object(
    db: Database, detail: object, message: str
) -> None:
    with pytest.raises(InvalidLedgerInput, match=message), db.session() as session:
        append_audit(
            session,
            workflow_id=None,
            run_id=None,
            actor="ops",
            action="x",
            entity="invoice",
            key="k",
            detail=detail,
        )


@pytest.mark.parametrize("limit", [0, -1, 10_001, True])
def test_audit_trail_refuses_a_limit_outside_one_to_ten_thousand(db: Database, limit: int) -> None:
    with pytest.raises(InvalidLedgerInput, match="limit must be an integer from 1 to 10000"):
        with db.session() as session:
            audit_trail(session, limit=limit)
