"""Xero passes the ERP journals contract against the sandbox; journals are manual journals, and Xero's lock
dates are what closes a period."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import date
from decimal import Decimal

import pytest

from canonical import LegalEntity
from connectors.errors import Rejected
from connectors.xero import XeroConnector
from connectors.xero.wire import parse_xero_date
from sandboxes.xero.control import XeroSandboxControl
from sandboxes.xero.lock_dates import LockDateSettings

from ..contract.journal_contract import CloseBooks, ErpJournalsContract, build_journal

LOCKED = (
    r"The document date cannot be before the {} lock date, currently set at "
    + r"\d{{2}}-[A-Z][a-z]{{2}}-\d{{4}}"
)


@pytest.fixture
def journal_accounts() -> tuple[str, str]:
    return ("310", "200")  # Cost of Goods Sold, Sales


@pytest.fixture
def close_books(control: XeroSandboxControl) -> CloseBooks:
    @contextlib.asynccontextmanager
    async def locked_through(day: date) -> AsyncIterator[None]:
        await control.set_lock_dates(LockDateSettings(period_lock_date=day))
        try:
            yield
        finally:
            await control.set_lock_dates(LockDateSettings())

    return locked_through


@pytest.fixture
def closed_period_words() -> str:
    return LOCKED.format("period")


class TestXeroJournalsContract(ErpJournalsContract):
    pass


async def test_the_organisation_shows_its_lock_dates_only_while_they_are_set(
    erp: XeroConnector, control: XeroSandboxControl
) -> None:
    await control.set_lock_dates(
        LockDateSettings(period_lock_date=date(2026, 9, 30), end_of_year_lock_date=date(2026, 3, 31))
    )
    try:
        locked = (await erp.client.get("/Organisation"))["Organisations"][0]
    finally:
        await control.set_lock_dates(LockDateSettings())
    unlocked = (await erp.client.get("/Organisation"))["Organisations"][0]

    assert parse_xero_date(locked["PeriodLockDate"]) == date(2026, 9, 30)
    assert parse_xero_date(locked["EndOfYearLockDate"]) == date(2026, 3, 31)
    assert "PeriodLockDate" not in unlocked and "EndOfYearLockDate" not in unlocked


async def test_a_journal_on_the_lock_date_itself_is_refused_with_every_lock_it_falls_under(
    erp: XeroConnector, control: XeroSandboxControl, entity: LegalEntity
) -> None:
    day = date(2025, 3, 31)
    journal = build_journal(entity, ("310", "200"), (), "75.00", on=day)
    await control.set_lock_dates(LockDateSettings(period_lock_date=day, end_of_year_lock_date=day))
    try:
        with pytest.raises(Rejected) as refused:
            await erp.post_journal(journal, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
    finally:
        await control.set_lock_dates(LockDateSettings())

    messages = [error.message for error in refused.value.field_errors]
    assert messages == [
        "The document date cannot be before the period lock date, currently set at 31-Mar-2025",
        "The document date cannot be before the end of year lock date, currently set at 31-Mar-2025",
    ]


async def test_a_journal_the_day_after_the_lock_date_posts(
    erp: XeroConnector, control: XeroSandboxControl, entity: LegalEntity
) -> None:
    journal = build_journal(entity, ("310", "200"), (), "75.00", on=date(2025, 4, 1))
    await control.set_lock_dates(LockDateSettings(period_lock_date=date(2025, 3, 31)))
    try:
        posted = await erp.post_journal(journal, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
    finally:
        await control.set_lock_dates(LockDateSettings())

    assert posted.state == "posted" and posted.date == date(2025, 4, 1)


async def test_a_journal_in_a_currency_other_than_the_base_currency_is_refused_before_it_is_sent(
    erp: XeroConnector, entity: LegalEntity
) -> None:
    euro = entity.model_copy(update={"currency": "EUR"})
    journal = build_journal(euro, ("310", "200"), (), "75.00")

    with pytest.raises(Rejected, match="base currency GBP"):
        await erp.post_journal(journal, entity=euro, idempotency_key=f"test:{uuid.uuid4()}")


async def test_xero_says_by_how_much_a_posted_journal_is_out_and_keeps_an_unbalanced_draft(
    erp: XeroConnector,
) -> None:
    def journal(status: str) -> dict[str, object]:
        return {
            "Narration": f"T-{uuid.uuid4().hex[:8]} out of balance",
            "Date": "2026-11-30",
            "Status": status,
            "LineAmountTypes": "NoTax",
            "JournalLines": [
                {"LineAmount": Decimal("100.00"), "AccountCode": "310", "Description": "debit"},
                {"LineAmount": Decimal("-10.00"), "AccountCode": "200", "Description": "credit"},
            ],
        }

    with pytest.raises(Rejected) as refused:
        await erp.client.put(
            "/ManualJournals", {"ManualJournals": [journal("POSTED")]}, idempotency_key=f"t:{uuid.uuid4()}"
        )
    draft = await erp.client.put(
        "/ManualJournals", {"ManualJournals": [journal("DRAFT")]}, idempotency_key=f"t:{uuid.uuid4()}"
    )

    assert [e.message for e in refused.value.field_errors] == [
        "The total debits (100.00) must equal total credits (-10.00)"
    ]
    assert draft["ManualJournals"][0]["Status"] == "DRAFT"


async def test_xero_refuses_a_journal_line_on_a_system_account(
    erp: XeroConnector, entity: LegalEntity
) -> None:
    journal = build_journal(entity, ("610", "200"), (), "12.00")  # 610: Accounts Receivable

    with pytest.raises(Rejected, match=r"Account code '610' is not a valid code for this document\."):
        await erp.post_journal(journal, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
