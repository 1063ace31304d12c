"""Tryton passes the ERP journals contract on a real server: journals are posted account moves of the general
journal, and finance closing a period is what refuses them."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

import pytest

from canonical import Account, LegalEntity
from connectors.errors import Rejected
from connectors.tryton.connector import TrytonConnector

from ..contract.journal_contract import CloseBooks, ErpJournalsContract, build_journal, project_dimensions

pytestmark = pytest.mark.tryton


@pytest.fixture
def journal_accounts() -> tuple[str, str]:
    return ("5.1.3", "4.1.2")  # an expense and the services revenue account of the generic chart


@pytest.fixture
def close_books(erp: TrytonConnector) -> CloseBooks:
    @contextlib.asynccontextmanager
    async def closed(day: date) -> AsyncIterator[None]:
        company = await erp.books.company()
        (period,) = await erp.rpc.search(
            "account.period",
            [
                ("fiscalyear.company", "=", company),
                ("start_date", "<=", day),
                ("end_date", ">=", day),
                ("type", "=", "standard"),
            ],
        )
        await erp.rpc.button("account.period", "close", [period])
        try:
            yield
        finally:
            await erp.rpc.button("account.period", "reopen", [period])

    return closed


@pytest.fixture
def closed_period_words() -> str:
    # Tryton's words depend on whether the period had lines of the journal before it was closed:
    # 'You cannot create a journal-period in closed period "2025-06".' or 'You cannot add/modify/delete
    # lines on closed journal-period "...".'
    return r'closed (journal-)?period "'


class TestTrytonJournalsContract(ErpJournalsContract):
    pass


async def test_a_line_on_a_receivable_account_books_against_the_customer_its_dimension_names(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account
) -> None:
    dimensions = await project_dimensions(erp, entity, seed_account)
    party = int(
        await erp.create_customer(seed_account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
    )
    journal = build_journal(entity, ("1.2.1", "4.1.2"), dimensions, "64.10")

    posted = await erp.post_journal(journal, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")

    lines = await erp.rpc.search_read(
        "account.move.line", [("move", "=", int(posted.journal_id))], ["account.code", "party", "debit"]
    )
    assert {(line["account."]["code"], line["party"]) for line in lines} == {
        ("1.2.1", party),
        ("4.1.2", None),
    }


async def test_a_receivable_line_without_a_customer_is_rejected_and_nothing_posts(
    erp: TrytonConnector, entity: LegalEntity
) -> None:
    journal = build_journal(entity, ("1.2.1", "4.1.2"), (), "64.10")

    with pytest.raises(Rejected, match="names no customer"):
        await erp.post_journal(journal, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
    assert await erp.find_journal(journal.reference) is None


async def test_a_move_tryton_refuses_to_post_is_removed_so_no_draft_stays_in_the_books(
    erp: TrytonConnector, entity: LegalEntity, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = build_journal(entity, ("5.1.3", "4.1.2"), (), "12.00")
    button = erp.rpc.button

    async def refusing_to_post(model: str, name: str, ids: Sequence[int], **kwargs: Any) -> Any:
        if (model, name) == ("account.move", "post"):
            raise Rejected("model.account.move.post: refused for the test", system="tryton")
        return await button(model, name, ids, **kwargs)

    monkeypatch.setattr(erp.rpc, "button", refusing_to_post)
    with pytest.raises(Rejected, match="refused for the test"):
        await erp.post_journal(journal, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
    monkeypatch.undo()

    assert await erp.find_journal(journal.reference) is None
