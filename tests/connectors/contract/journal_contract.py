"""The ERP journals contract: what every `ErpJournals` connector must do, whoever the vendor is.

Subclass in a vendor's test module with the fixtures
- `erp`: a connected connector (also an `ErpConnector` and `ErpProjectBooks`: lines carry a real project's
  dimensions), `entity`: the `LegalEntity` it books, `seed_account`: a CRM account unique to the test;
- `journal_accounts`: two codes of active accounts of that entity's chart a journal may book to (the first
  debited, the second credited: e.g. accrued revenue and revenue);
- `close_books`: `close_books(day)` is an async context manager inside which the ERP refuses anything dated
  `day` as finance's closing of the period does (Xero: a lock date; Tryton: the period closed), reopened
  after;
- `closed_period_words`: a regex of the ERP's own words for that refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import date, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from canonical import Account, LegalEntity, Money
from canonical.dimensions import DimensionValue
from canonical.journals import Journal, JournalLine, first_day_of_next_period
from connectors.errors import Rejected
from connectors.roles import ErpConnector, ErpJournals, ErpProjectBooks

from .erp_contract import project_spec

CloseBooks = Callable[[date], AbstractAsyncContextManager[None]]


def _key(purpose: str) -> str:
    return f"contract:{purpose}:{uuid.uuid4()}"


def _reference(kind: str = "REVREC") -> str:
    return f"{kind}-{uuid.uuid4().hex[:12].upper()}"


def build_journal(
    entity: LegalEntity,
    accounts: tuple[str, str],
    dimensions: tuple[DimensionValue, ...],
    *amounts: str,
    on: date | None = None,
    reference: str | None = None,
) -> Journal:
    """Each amount debited to the first account, and their sum credited to the second, in one line."""
    debit, credit = accounts
    lines = [
        JournalLine(
            account_code=debit,
            description=f"Revenue recognised, part {index}",
            amount=Money.of(amount, entity.currency),
            dimensions=dimensions,
            source=f"time:{uuid.uuid4().hex[:8]},time:{uuid.uuid4().hex[:8]}",
        )
        for index, amount in enumerate(amounts, start=1)
    ]
    total = sum((Decimal(amount) for amount in amounts), Decimal(0))
    lines.append(
        JournalLine(
            account_code=credit,
            description="Revenue recognised",
            amount=Money(amount=-total, currency=entity.currency),
            dimensions=dimensions,
            source="recognition:fixed-fee",
        )
    )
    return Journal(
        reference=reference or _reference(),
        legal_entity=entity.code,
        date=on or date.today(),
        narration="Revenue recognition, contract test",
        currency=entity.currency,
        lines=tuple(lines),
    )


def _pairs(values: tuple[DimensionValue, ...]) -> set[tuple[str, str]]:
    return {(value.dimension, value.code) for value in values}


def _last_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=15)


async def project_dimensions(
    erp: ErpConnector, entity: LegalEntity, account: Account
) -> tuple[DimensionValue, ...]:
    """The dimension values of a new project of a new customer, in the ERP's own keys."""
    assert isinstance(erp, ErpProjectBooks)
    customer_id = await erp.create_customer(account, entity=entity, idempotency_key=_key("customer"))
    project = await erp.ensure_erp_project(project_spec(account, customer_id), entity=entity)
    return project.dimensions


class ErpJournalsContract:
    """What every ERP connector offering journals must do. Subclass as `Test<Vendor>JournalsContract`."""

    def test_connector_offers_journals(self, erp: ErpJournals) -> None:
        assert isinstance(erp, ErpJournals)

    async def test_a_balanced_journal_posts_once_under_its_key_and_its_reference(
        self,
        erp: ErpConnector,
        entity: LegalEntity,
        seed_account: Account,
        journal_accounts: tuple[str, str],
    ) -> None:
        assert isinstance(erp, ErpJournals)
        dimensions = await project_dimensions(erp, entity, seed_account)
        journal = build_journal(entity, journal_accounts, dimensions, "1250.00", "310.45")
        key = _key("journal")

        posted = await erp.post_journal(journal, entity=entity, idempotency_key=key)
        retried = await erp.post_journal(journal, entity=entity, idempotency_key=key)
        # A re-run that lost the key still finds the journal by its reference.
        rerun = await erp.post_journal(journal, entity=entity, idempotency_key=_key("journal"))

        assert posted.state == "posted"
        assert posted.reference == journal.reference
        assert posted.date == journal.date
        assert posted.total_debits == Money.of("1560.45", entity.currency) == journal.total_debits
        assert retried.journal_id == posted.journal_id == rerun.journal_id
        found = await erp.find_journal(journal.reference)
        assert found is not None and found.journal_id == posted.journal_id
        booked = await erp.booked_journals(journal.reference)
        assert [b.journal.journal_id for b in booked] == [posted.journal_id]

    async def test_lines_come_back_on_their_accounts_with_their_amounts_dimensions_and_sources(
        self,
        erp: ErpConnector,
        entity: LegalEntity,
        seed_account: Account,
        journal_accounts: tuple[str, str],
    ) -> None:
        assert isinstance(erp, ErpJournals)
        dimensions = await project_dimensions(erp, entity, seed_account)
        journal = build_journal(entity, journal_accounts, dimensions, "99.99", "0.01")

        posted = await erp.post_journal(journal, entity=entity, idempotency_key=_key("journal"))
        booked = await erp.get_journal(posted.journal_id)

        assert booked.journal.journal_id == posted.journal_id
        assert journal.reference in booked.narration and journal.narration in booked.narration
        assert sorted((line.account_code, line.amount.amount) for line in booked.lines) == sorted(
            (line.account_code, line.amount.amount) for line in journal.lines
        )
        for line in booked.lines:
            assert _pairs(line.dimensions) == _pairs(dimensions)
        for sent in journal.lines:
            assert any(sent.source in line.description for line in booked.lines), sent.source

    async def test_an_unbalanced_journal_is_refused_before_it_reaches_the_erp(
        self,
        erp: ErpConnector,
        entity: LegalEntity,
        journal_accounts: tuple[str, str],
    ) -> None:
        assert isinstance(erp, ErpJournals)
        balanced = build_journal(entity, journal_accounts, (), "100.00")
        short = balanced.lines[-1].model_copy(update={"amount": Money.of("-99.99", entity.currency)})

        with pytest.raises(ValidationError, match="does not balance"):
            Journal(**{**balanced.model_dump(exclude={"total_debits"}), "lines": (balanced.lines[0], short)})
        # Built past the model's checks, it is still refused by the connector, and nothing is posted.
        smuggled = Journal.model_construct(**{**dict(balanced), "lines": (balanced.lines[0], short)})
        with pytest.raises(Rejected, match="does not balance"):
            await erp.post_journal(smuggled, entity=entity, idempotency_key=_key("journal"))
        assert await erp.find_journal(balanced.reference) is None

    async def test_a_journal_dated_in_a_closed_period_is_rejected_in_the_erps_words(
        self,
        erp: ErpConnector,
        entity: LegalEntity,
        journal_accounts: tuple[str, str],
        close_books: CloseBooks,
        closed_period_words: str,
    ) -> None:
        assert isinstance(erp, ErpJournals)
        day = date(date.today().year - 1, 6, 15)
        journal = build_journal(entity, journal_accounts, (), "480.00", on=day)

        async with close_books(day):
            with pytest.raises(Rejected, match=closed_period_words):
                await erp.post_journal(journal, entity=entity, idempotency_key=_key("journal"))

        assert await erp.find_journal(journal.reference) is None

    async def test_a_reversal_posts_as_its_own_journal_on_the_first_day_of_the_next_period(
        self,
        erp: ErpConnector,
        entity: LegalEntity,
        seed_account: Account,
        journal_accounts: tuple[str, str],
    ) -> None:
        assert isinstance(erp, ErpJournals)
        dimensions = await project_dimensions(erp, entity, seed_account)
        accrual = build_journal(
            entity,
            journal_accounts,
            dimensions,
            "2000.00",
            on=_last_month(date.today()),
            reference=_reference("WIP"),
        )
        reversal = accrual.reversal(f"{accrual.reference}-REV")

        posted = await erp.post_journal(accrual, entity=entity, idempotency_key=_key("accrual"))
        reversed_ = await erp.post_journal(reversal, entity=entity, idempotency_key=_key("reversal"))

        assert reversed_.journal_id != posted.journal_id
        assert reversed_.date == first_day_of_next_period(accrual.date) == date.today().replace(day=1)
        assert reversed_.total_debits == posted.total_debits
        booked = await erp.get_journal(reversed_.journal_id)
        assert sorted((line.account_code, line.amount.amount) for line in booked.lines) == sorted(
            (line.account_code, -line.amount.amount) for line in accrual.lines
        )
        listed = await erp.booked_journals(accrual.reference)
        assert sorted(b.journal.journal_id for b in listed) == sorted(
            [posted.journal_id, reversed_.journal_id]
        )

    async def test_a_line_on_an_account_the_erp_lacks_is_rejected_and_nothing_posts(
        self,
        erp: ErpConnector,
        entity: LegalEntity,
        journal_accounts: tuple[str, str],
    ) -> None:
        assert isinstance(erp, ErpJournals)
        journal = build_journal(entity, ("99999", journal_accounts[1]), (), "10.00")

        with pytest.raises(Rejected, match="99999"):
            await erp.post_journal(journal, entity=entity, idempotency_key=_key("journal"))
        assert await erp.find_journal(journal.reference) is None

    async def test_a_journal_of_another_entity_is_rejected(
        self, erp: ErpConnector, entity: LegalEntity, journal_accounts: tuple[str, str]
    ) -> None:
        assert isinstance(erp, ErpJournals)
        journal = build_journal(entity, journal_accounts, (), "10.00").model_copy(
            update={"legal_entity": f"NOT-{entity.code}"}
        )

        with pytest.raises(Rejected):
            await erp.post_journal(journal, entity=entity, idempotency_key=_key("journal"))
