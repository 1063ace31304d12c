"""The ledger's record of posted supplier bills, on SQLite and PostgreSQL: every fact read back exactly, the
same key recorded twice keeps one row, and a period's bills are listed per entity."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from canonical import Money
from ledger.bill_postings import bill_postings_for, get_bill_posting, record_bill_posting
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.tables import BillPosting

from .test_concurrency import Worker, _wait_until_blocked_on_a_lock

KEY = "payables:kantata:person:kantata:42:2026-11:UK:0123456789abcdef"


def _bill(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "idempotency_key": KEY,
        "erp": "xero",
        "legal_entity": "UK",
        "period": "2026-11",
        "supplier_key": "person:kantata:42",
        "reference": "EXP-2026-11-ABCDEF0123",
        "bill_id": "2f6c1f0a-4d8e-4d1b-9c1e-000000000001",
        "number": "EXP-2026-11-ABCDEF0123",
        "total": Money.of("352.5001", "GBP"),
        "source_ids": [["101"], ["time:7", "time:8"]],
    }
    return {**values, **overrides}


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(BillPosting)) or 0


def test_a_bill_posting_keeps_every_fact_and_reads_back_exactly(db: Database) -> None:
    posted_at = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    with db.session() as session:
        recorded = record_bill_posting(session, **_bill(posted_at=posted_at))
    with db.session() as session:
        read = get_bill_posting(session, idempotency_key=KEY)

    assert read == recorded
    assert read is not None
    assert (read.erp, read.legal_entity, read.period, read.supplier_key) == (
        "xero",
        "UK",
        "2026-11",
        "person:kantata:42",
    )
    assert read.total == Money.of("352.5001", "GBP") and read.total.amount == Decimal("352.5001")
    assert read.line_count == 2
    assert read.source_ids == (("101",), ("time:7", "time:8"))
    assert read.posted_at == posted_at


def test_recording_the_same_key_again_changes_nothing(db: Database) -> None:
    with db.session() as session:
        first = record_bill_posting(session, **_bill())
    with db.session() as session:
        again = record_bill_posting(session, **_bill(number="EXP-OTHER", total=Money.of("1.00", "GBP")))

    assert again == first
    assert _count(db) == 1


def test_a_period_lists_the_entitys_bills_only(db: Database) -> None:
    with db.session() as session:
        record_bill_posting(session, **_bill())
        record_bill_posting(session, **_bill(idempotency_key=f"{KEY}:2", number="EXP-2"))
        record_bill_posting(session, **_bill(idempotency_key=f"{KEY}:eu", legal_entity="EU", erp="tryton"))
        record_bill_posting(session, **_bill(idempotency_key=f"{KEY}:dec", period="2026-12"))
    with db.session() as session:
        listed = bill_postings_for(session, legal_entity="UK", period="2026-11")

    assert [bill.number for bill in listed] == ["EXP-2026-11-ABCDEF0123", "EXP-2"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("period", "2026-13"),
        ("total", "352.50"),
        ("total", Money.of("0.00001", "GBP")),
        ("erp", "Xero"),
        ("number", ""),
        ("source_ids", [[" 101"]]),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(db: Database, field: str, value: Any) -> None:
    with pytest.raises(InvalidLedgerInput), db.session() as session:
        record_bill_posting(session, **_bill(**{field: value}))
    assert _count(db) == 0


def test_concurrent_recording_of_one_key_keeps_one_bill(db: Database) -> None:
    def record(session: Session) -> Any:
        return record_bill_posting(session, **_bill())

    with db.session() as first_session:
        winner = record(first_session)
        second = Worker(db, record)
        second.start()
        _wait_until_blocked_on_a_lock(db, second)
    assert second.outcome() == winner
    assert _count(db) == 1
