from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from canonical import ExceptionOwner
from ledger.database import Database
from ledger.errors import ExceptionNotFound, InvalidExceptionTransition, InvalidLedgerInput
from ledger.records import ExceptionItem
from ledger.repository import (
    act_on_exception,
    exception_counts_by_owner,
    get_exception,
    get_exception_by_dedupe_key,
    list_exceptions,
    open_exception,
)
from ledger.tables import ExceptionEntry
from ledger.vocab import ExceptionAction, ExceptionStatus

DEDUPE = "time_to_billing:P-100:2025-03:entry:TE-77"


def _open(db: Database, **overrides: Any) -> ExceptionItem:
    arguments: dict[str, Any] = {
        "dedupe_key": DEDUPE,
        "process": "time_to_billing",
        "owner": "pmo",
        "reason": "time entry TE-77 has no rate for role 'architect'",
        "record": {"entry_id": "TE-77", "hours": Decimal("7.5")},
        "workflow_id": "time-to-billing:P-100:2025-03",
        "run_id": "run-1",
    }
    with db.session() as session:
        return open_exception(session, **{**arguments, **overrides})


def _act(db: Database, item: ExceptionItem, action: str, **extra: Any) -> ExceptionItem:
    with db.session() as session:
        return act_on_exception(session, exception_id=item.id, action=action, actor="pat@pmo", **extra)


def _count(db: Database) -> int:
    with db.session() as session:
        return session.scalar(select(func.count()).select_from(ExceptionEntry)) or 0


def test_open_exception_creates_an_open_item_with_one_attempt(db: Database) -> None:
    item = _open(db)
    assert item.status is ExceptionStatus.OPEN
    assert item.owner is ExceptionOwner.PMO
    assert item.attempts == 1
    assert item.record == {"entry_id": "TE-77", "hours": "7.5"}
    assert item.resolution is None
    assert item.resolved_at is None
    with db.session() as session:
        assert get_exception(session, exception_id=item.id) == item
        assert get_exception_by_dedupe_key(session, dedupe_key=DEDUPE) == item


def test_opening_the_same_dedupe_key_while_open_updates_it_instead_of_duplicating(db: Database) -> None:
    first = _open(db)
    again = _open(db, reason="still no rate for 'architect'", record={"entry_id": "TE-77", "hours": "8"})
    assert again.id == first.id
    assert again.attempts == 1
    assert again.reason == "still no rate for 'architect'"
    assert again.record == {"entry_id": "TE-77", "hours": "8"}
    assert again.created_at == first.created_at
    assert again.updated_at > first.updated_at
    assert _count(db) == 1


def test_a_repeat_report_without_a_run_keeps_the_run_that_raised_it(db: Database) -> None:
    _open(db)
    again = _open(db, workflow_id=None, run_id=None)
    assert (again.workflow_id, again.run_id) == ("time-to-billing:P-100:2025-03", "run-1")


def test_retry_moves_an_open_item_to_retrying_and_records_who(db: Database) -> None:
    retrying = _act(db, _open(db), "retry")
    assert retrying.status is ExceptionStatus.RETRYING
    assert retrying.resolution is not None
    assert (retrying.resolution.action, retrying.resolution.actor) == (ExceptionAction.RETRY, "pat@pmo")
    assert retrying.resolved_at is None


def test_a_failed_retry_reopens_the_item_with_one_more_attempt(db: Database) -> None:
    item = _open(db)
    _act(db, item, "retry")
    reopened = _open(db)
    assert reopened.id == item.id
    assert reopened.status is ExceptionStatus.OPEN
    assert reopened.attempts == 2


@pytest.mark.parametrize("closing", ["resolve", "skip"])
def test_a_closed_item_reopens_with_attempts_plus_one_when_the_failure_returns(
    db: Database, closing: str
) -> None:
    item = _open(db)
    closed = _act(db, item, closing, note="handled in Kantata" if closing == "skip" else None)
    assert closed.resolved_at is not None
    reopened = _open(db)
    assert reopened.id == item.id
    assert reopened.status is ExceptionStatus.OPEN
    assert reopened.attempts == 2
    assert reopened.resolved_at is None
    # The last person's action stays visible on the re-opened item.
    assert reopened.resolution is not None
    assert reopened.resolution.action == closing
    assert _count(db) == 1


def test_skip_requires_a_note_and_closes_the_item(db: Database) -> None:
    item = _open(db)
    with pytest.raises(InvalidLedgerInput, match="skip needs a note"):
        _act(db, item, "skip")
    skipped = _act(db, item, "skip", note="non-billable internal work")
    assert skipped.status is ExceptionStatus.SKIPPED
    assert skipped.resolution is not None
    assert skipped.resolution.note == "non-billable internal work"
    assert skipped.resolved_at is not None


def test_fix_requires_corrected_fields_and_moves_to_retrying_with_them(db: Database) -> None:
    item = _open(db)
    with pytest.raises(InvalidLedgerInput, match="fix needs corrected_fields"):
        _act(db, item, "fix")
    with pytest.raises(InvalidLedgerInput, match="at least one corrected field"):
        _act(db, item, "fix", corrected_fields={})
    fixed = _act(db, item, "fix", corrected_fields={"role": "senior_consultant", "rate": Decimal("150.00")})
    assert fixed.status is ExceptionStatus.RETRYING
    assert fixed.resolution is not None
    assert fixed.resolution.corrected_fields == {"role": "senior_consultant", "rate": "150.00"}
    with db.session() as session:
        assert get_exception(session, exception_id=item.id) == fixed


def test_corrected_fields_are_refused_for_actions_other_than_fix(db: Database) -> None:
    with pytest.raises(InvalidLedgerInput, match="corrected_fields go with the fix action, not retry"):
        _act(db, _open(db), "retry", corrected_fields={"role": "x"})


def test_resolve_closes_an_open_or_retrying_item(db: Database) -> None:
    item = _open(db)
    _act(db, item, "retry")
    resolved = _act(db, item, "resolve", note="rate card fixed upstream")
    assert resolved.status is ExceptionStatus.RESOLVED
    assert resolved.resolved_at is not None


@pytest.mark.parametrize(
    ("setup", "action", "extra"),
    [
        (["resolve"], "retry", {}),
        (["resolve"], "fix", {"corrected_fields": {"a": 1}}),
        (["skip"], "resolve", {}),
        (["resolve"], "skip", {"note": "n"}),
        (["retry"], "retry", {}),
        (["retry"], "fix", {"corrected_fields": {"a": 1}}),
    ],
)
def test_actions_the_status_does_not_allow_raise_invalid_exception_transition(
    db: Database, setup: list[str], action: str, extra: dict[str, Any]
) -> None:
    item = _open(db)
    for step in setup:
        item = _act(db, item, step, note="because" if step == "skip" else None)
    with pytest.raises(
        InvalidExceptionTransition, match=f"exception {item.id} is {item.status}; {action} is only"
    ):
        _act(db, item, action, **extra)
    with db.session() as session:
        assert get_exception(session, exception_id=item.id) == item


def test_acting_on_an_unknown_exception_raises_exception_not_found(db: Database) -> None:
    with pytest.raises(ExceptionNotFound, match="no exception with id 999999"), db.session() as session:
        act_on_exception(session, exception_id=999999, action="retry", actor="pat")


def test_unknown_action_is_refused_with_the_allowed_ones(db: Database) -> None:
    with pytest.raises(
        InvalidLedgerInput, match="action must be one of fix, resolve, retry, skip; got 'ignore'"
    ):
        _act(db, _open(db), "ignore")


def test_list_exceptions_filters_by_owner_status_and_process_oldest_first(db: Database) -> None:
    a = _open(db, dedupe_key="a", owner="finance")
    b = _open(db, dedupe_key="b", owner="pmo")
    c = _open(db, dedupe_key="c", owner="finance", process="invoice_to_cash")
    _act(db, c, "retry")
    with db.session() as session:
        assert [i.id for i in list_exceptions(session)] == [a.id, b.id, c.id]
        assert [i.id for i in list_exceptions(session, owner="finance")] == [a.id, c.id]
        assert [i.id for i in list_exceptions(session, status="retrying")] == [c.id]
        assert [i.id for i in list_exceptions(session, process="time_to_billing")] == [a.id, b.id]
        assert [i.id for i in list_exceptions(session, owner="finance", status="open")] == [a.id]
        assert [i.id for i in list_exceptions(session, limit=1)] == [a.id]


def test_exception_counts_by_owner_covers_every_owner_and_the_oldest_waiting_item(db: Database) -> None:
    first = _open(db, dedupe_key="a", owner="finance")
    _open(db, dedupe_key="b", owner="finance")
    _act(db, first, "retry")
    resolved = _open(db, dedupe_key="c", owner="sales_ops")
    _act(db, resolved, "resolve")
    with db.session() as session:
        summary = exception_counts_by_owner(session)
    assert set(summary) == set(ExceptionOwner)
    finance = summary[ExceptionOwner.FINANCE]
    assert finance.by_status == {
        ExceptionStatus.OPEN: 1,
        ExceptionStatus.RETRYING: 1,
        ExceptionStatus.SKIPPED: 0,
        ExceptionStatus.RESOLVED: 0,
    }
    assert finance.waiting == 2
    assert finance.oldest_waiting_since == first.created_at
    sales = summary[ExceptionOwner.SALES_OPS]
    assert sales.by_status[ExceptionStatus.RESOLVED] == 1
    assert sales.oldest_waiting_since is None
    assert summary[ExceptionOwner.HR_OPS].waiting == 0


def test_age_is_measured_from_when_the_item_was_first_raised(db: Database) -> None:
    item = _open(db)
    assert item.age(now=item.created_at + timedelta(hours=30)) == timedelta(hours=30)
    assert item.age() >= timedelta(0)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"owner": "legal"}, "owner must be one of finance, hr_ops, integration_support, pmo, sales_ops"),
        ({"process": "Time To Billing"}, "process must be snake_case"),
        ({"reason": ""}, "reason must not be blank"),
        ({"record": "TE-77"}, "record must be a mapping"),
        ({"dedupe_key": ""}, "dedupe_key must not be empty"),
    ],
)
def test_open_exception_refuses_bad_input_with_a_specific_message(
    db: Database, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidLedgerInput, match=message):
        _open(db, **overrides)
    assert _count(db) == 0
