from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from canonical import Money, Period
from ledger.database import Database
from ledger.errors import InvalidLedgerInput, PostingConflict, PostingNotFound
from ledger.repository import get_posting, mark_posting_billed, postings_for, record_posting
from ledger.tables import Posting
from ledger.vocab import PostingState


def _posting(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "idempotency_key": "ttb:P-100:2025-03:9f2c",
        "erp": "xero",
        "legal_entity": "UK",
        "project_id": "P-100",
        "period": "2025-03",
        "target_id": "2f6c1f0a-4d8e-4d1b-9c1e-000000000001",
        "number": "INV-0042",
        "amount": Money.of("12345678.9012", "GBP"),
        "content_hash": "sha256:aa11",
    }
    return {**values, **overrides}


def test_record_posting_stores_every_fact_and_get_posting_reads_it_back(db: Database) -> None:
    with db.session() as session:
        recorded = record_posting(session, **_posting())
    with db.session() as session:
        read = get_posting(session, idempotency_key="ttb:P-100:2025-03:9f2c")
    assert read == recorded
    assert read is not None
    assert read.erp == "xero"
    assert read.state is PostingState.POSTED
    assert read.billed_at is None
    assert read.number == "INV-0042"


@pytest.mark.parametrize(
    "amount",
    ["12345678.9012", "99999999999999.9999", "-0.0001", "0.1", "1E+3", "-250000.5"],
)
def test_amounts_round_trip_exactly(db: Database, amount: str) -> None:
    with db.session() as session:
        record_posting(session, **_posting(amount=Money.of(amount, "EUR"), erp="tryton", legal_entity="EU"))
    with db.session() as session:
        read = get_posting(session, idempotency_key="ttb:P-100:2025-03:9f2c")
    assert read is not None
    assert read.amount.amount == Decimal(amount)
    assert read.amount.currency == "EUR"


def test_a_posting_to_an_erp_the_ledger_has_never_heard_of_is_recorded(db: Database) -> None:
    # Which ERPs exist is the deployment's configuration, so a newly configured one needs no ledger change.
    with db.session() as session:
        record_posting(session, **_posting(erp="netsuite", legal_entity="US", amount=Money.of("5", "USD")))
    with db.session() as session:
        read = get_posting(session, idempotency_key="ttb:P-100:2025-03:9f2c")
    assert read is not None
    assert read.erp == "netsuite"


def test_amount_is_stored_as_exact_fixed_point_not_as_a_float(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting())
    with db.engine.connect() as connection:
        raw = connection.execute(text("SELECT amount FROM posting")).scalar_one()
    # SQLite keeps the text, PostgreSQL a NUMERIC(18, 4): neither went through a float.
    assert str(raw) == "12345678.9012"


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("1.00001", "more than 4 decimal places"),
        ("100000000000000", "more than 14 digits before the decimal point"),
    ],
)
def test_amounts_the_column_cannot_hold_exactly_are_refused_not_rounded(
    db: Database, amount: str, message: str
) -> None:
    with pytest.raises(InvalidLedgerInput, match=message), db.session() as session:
        record_posting(session, **_posting(amount=Money.of(amount, "GBP")))


def test_recording_the_same_posting_again_returns_the_first_record(db: Database) -> None:
    with db.session() as session:
        first = record_posting(session, **_posting())
    with db.session() as session:
        again = record_posting(session, **_posting())
        count = session.scalar(select(func.count()).select_from(Posting))
    assert again == first
    assert count == 1


def test_a_repeat_may_fill_in_the_erp_number_that_was_unknown_at_first(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting(number=None))
    with db.session() as session:
        filled = record_posting(session, **_posting(number="INV-0042"))
    assert filled.number == "INV-0042"
    with db.session() as session:
        # and a later repeat without the number does not erase it
        assert record_posting(session, **_posting(number=None)).number == "INV-0042"


def test_same_key_with_different_content_hash_raises_posting_conflict(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting())
    with pytest.raises(
        PostingConflict, match="recorded with content hash sha256:aa11, not sha256:bb22"
    ) as caught:
        with db.session() as session:
            record_posting(session, **_posting(content_hash="sha256:bb22"))
    assert caught.value.differences["content_hash"] == ("sha256:aa11", "sha256:bb22")


def test_same_key_and_content_but_a_different_erp_invoice_raises_posting_conflict(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting())
    with pytest.raises(PostingConflict, match="target_id recorded") as caught:
        with db.session() as session:
            record_posting(session, **_posting(target_id="a-second-invoice"))
    assert set(caught.value.differences) == {"target_id"}


def test_same_key_and_content_but_a_different_amount_raises_posting_conflict(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting())
    with pytest.raises(PostingConflict) as caught, db.session() as session:
        record_posting(session, **_posting(amount=Money.of("12345678.9013", "GBP")))
    assert caught.value.differences == {"amount": ("12345678.9012", "12345678.9013")}


def test_mark_posting_billed_sets_state_and_keeps_the_first_billed_date(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting())
    with db.session() as session:
        billed = mark_posting_billed(session, idempotency_key="ttb:P-100:2025-03:9f2c")
    assert billed.state is PostingState.BILLED
    assert billed.billed_at is not None
    with db.session() as session:
        again = mark_posting_billed(session, idempotency_key="ttb:P-100:2025-03:9f2c")
    assert again.billed_at == billed.billed_at
    with db.session() as session:
        assert get_posting(session, idempotency_key="ttb:P-100:2025-03:9f2c") == billed


def test_mark_posting_billed_for_an_unknown_key_raises_posting_not_found(db: Database) -> None:
    with pytest.raises(PostingNotFound, match="'nope'"), db.session() as session:
        mark_posting_billed(session, idempotency_key="nope")


def test_get_posting_for_an_unknown_key_returns_none(db: Database) -> None:
    with db.session() as session:
        assert get_posting(session, idempotency_key="nope") is None


def test_postings_for_filters_by_entity_period_and_project_oldest_first(db: Database) -> None:
    with db.session() as session:
        record_posting(session, **_posting(idempotency_key="a", project_id="P-1", period="2025-03"))
        record_posting(session, **_posting(idempotency_key="b", project_id="P-2", period="2025-03"))
        record_posting(session, **_posting(idempotency_key="c", project_id="P-1", period="2025-04"))
        record_posting(
            session,
            **_posting(idempotency_key="d", erp="tryton", legal_entity="EU", amount=Money.of("1", "EUR")),
        )
    with db.session() as session:
        assert [p.idempotency_key for p in postings_for(session)] == ["a", "b", "c", "d"]
        assert [p.idempotency_key for p in postings_for(session, legal_entity="UK", period="2025-03")] == [
            "a",
            "b",
        ]
        assert [p.idempotency_key for p in postings_for(session, project_id="P-1")] == ["a", "c"]
        assert [p.idempotency_key for p in postings_for(session, period=Period(value="2025-04"))] == ["c"]
        assert [p.idempotency_key for p in postings_for(session, legal_entity="EU")] == ["d"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"erp": "Xero"}, "erp must be a system name as configured: a lowercase letter, .*; got 'Xero'"),
        ({"erp": "x" * 17}, "erp is 17 characters long; the ledger stores at most 16"),
        ({"period": "2025-13"}, "period must be a month written 'YYYY-MM', got '2025-13'"),
        ({"amount": Decimal("10.00")}, "amount must be Money"),
        ({"content_hash": ""}, "content_hash must not be empty"),
        ({"idempotency_key": "key "}, "leading or trailing whitespace"),
    ],
)
def test_record_posting_refuses_bad_input_with_a_specific_message(
    db: Database, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidLedgerInput, match=message), db.session() as session:
        record_posting(session, **_posting(**overrides))
