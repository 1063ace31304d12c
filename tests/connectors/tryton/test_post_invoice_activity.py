"""The post_invoice activity against real Tryton: a draft left by a timed-out attempt is finished, never
taken for a posted invoice (found by the benchmark: 47 runs stuck on an invoice with no number)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.erp import ErpActivities, PostInvoiceInput
from activities.erp_router import ErpRouter
from canonical import Account, InvoiceState, LegalEntity
from connectors.tryton.connector import TrytonConnector
from ledger.database import Database
from ledger.repository import get_posting

from .test_tryton_connector import _invoice, _invoices_with_key, _key, _line

pytestmark = pytest.mark.tryton


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Database]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


@pytest.mark.parametrize("lossy_erp", ["model.account.invoice.create"], indirect=True)
async def test_retry_after_an_attempt_that_timed_out_at_the_draft_finishes_it_and_records_its_number(
    lossy_erp: TrytonConnector, entity: LegalEntity, seed_account: Account, customer_id: str, ledger: Database
) -> None:
    activities = ErpActivities(ErpRouter({"tryton": lossy_erp}, [entity]), ledger)
    invoice = _invoice(entity, seed_account, customer_id, [_line("Consulting", "10", "100.00")])
    request = PostInvoiceInput(invoice=invoice, idempotency_key=_key())
    env = ActivityEnvironment()

    with pytest.raises(ApplicationError, match=r"did not answer"):
        await env.run(activities.post_invoice, request)
    retried = await env.run(activities.post_invoice, request)

    assert retried.posted.state == InvoiceState.AWAITING_PAYMENT and retried.posted.number
    [stored] = await _invoices_with_key(lossy_erp, request.idempotency_key)
    assert stored["state"] == "posted" and stored["id"] == int(retried.posted.invoice_id)
    with ledger.session() as session:
        posting = get_posting(session, idempotency_key=request.idempotency_key)
    assert posting is not None and posting.number == retried.posted.number
