"""Two workers share one Xero tenant's minute through the ledger, against the sandbox with its limits on.

Each "worker" is what a worker process holds: its own ledger engine (on one SQLite file), its own
XeroConnector given the ledger's call budgets, and its own ERP activities. The sandbox counts every call it
is sent, so it tells whether the two together kept inside the minute. The limit is small (12 a minute, 4
kept for foreground calls) so the minute is spent in a second instead of waited out.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.erp import ErpActivities, GetInvoiceStatusInput, GetInvoiceStatusResult, PostInvoiceInput
from activities.erp_router import ErpRouter
from canonical import Account, LegalEntity
from config import Settings
from connectors.errors import RateLimited
from connectors.xero import XeroConnector, XeroRateLimited
from ledger.call_budget import LedgerCallBudget, LedgerCallBudgets
from ledger.database import Database
from sandboxes.faults import FaultConfig
from sandboxes.xero import RateLimitConfig
from sandboxes.xero.control import XeroSandboxControl
from worker import build_connectors

from ..contract.erp_contract import build_invoice, net_thousand_lines
from ..specs import SpecValidatingTransport, ValidationLog
from .conftest import XeroSandboxHandle

LIMIT, RESERVE = 12, 4


@dataclass
class Worker:
    database: Database
    xero: XeroConnector
    erp: ErpActivities


@pytest.fixture
def ledger_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    database = Database.from_url(url)
    database.migrate()
    database.dispose()
    yield url


@pytest.fixture
async def workers(
    xero_sandbox: XeroSandboxHandle, spec_log: ValidationLog, entity: LegalEntity, ledger_url: str
) -> AsyncIterator[tuple[Worker, Worker]]:
    built = [_worker(xero_sandbox, spec_log, entity, ledger_url) for _ in range(2)]
    yield built[0], built[1]
    for worker in built:
        await worker.xero.aclose()
        worker.database.dispose()


def _worker(
    sandbox: XeroSandboxHandle,
    log: ValidationLog,
    entity: LegalEntity,
    ledger_url: str,
    *,
    max_wait_in_attempt: float = 5.0,
) -> Worker:
    database = Database.from_url(ledger_url)
    xero = XeroConnector(
        base_url=sandbox.url,
        identity_url=sandbox.url,
        client_id=sandbox.config.client_id,
        client_secret=sandbox.config.client_secret,
        tenant_id=sandbox.config.tenant_id,
        # Two workers of two calls each stay inside Xero's five calls in progress per tenant.
        max_concurrency=2,
        calls_per_minute=LIMIT,
        background_reserve=RESERVE,
        max_wait_in_attempt=max_wait_in_attempt,
        http=httpx.AsyncClient(transport=SpecValidatingTransport(log=log), timeout=10.0),
    )
    xero.share_call_budgets(LedgerCallBudgets(database))
    return Worker(
        database=database, xero=xero, erp=ErpActivities(ErpRouter({"xero": xero}, [entity]), database)
    )


def _sent(before: dict[str, object], after: dict[str, object]) -> int:
    counted_before, counted_after = before["calls"], after["calls"]
    assert isinstance(counted_before, int) and isinstance(counted_after, int)
    return counted_after - counted_before


async def test_two_workers_keep_inside_the_tenants_minute_and_polls_give_way_to_posting(
    erp: XeroConnector,
    control: XeroSandboxControl,
    workers: tuple[Worker, Worker],
    entity: LegalEntity,
    seed_account: Account,
) -> None:
    # Set up with a connector of its own, before the minute under test starts.
    customer_id = await erp.create_customer(seed_account, entity=entity, idempotency_key=f"t:{uuid.uuid4()}")
    polled = await erp.post_invoice(
        build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity)),
        entity=entity,
        idempotency_key=f"t:{uuid.uuid4()}",
    )
    new_work = [build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity)) for _ in workers]
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=LIMIT))
    before = await control.stats()
    started = time.monotonic()

    # Six status polls from each worker at once: background work gets the minute less the reserve.
    polls = await asyncio.gather(
        *(
            ActivityEnvironment().run(
                worker.erp.get_invoice_status, GetInvoiceStatusInput(erp="xero", invoice_id=polled.invoice_id)
            )
            for worker in workers
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    # Posting (a lookup and a PUT each) still finds the reserve.
    posted = [
        await ActivityEnvironment().run(
            worker.erp.post_invoice, PostInvoiceInput(invoice=invoice, idempotency_key=f"t:{uuid.uuid4()}")
        )
        for worker, invoice in zip(workers, new_work, strict=True)
    ]
    # The minute is spent now, for foreground calls too, and nothing more is sent.
    with pytest.raises(RateLimited) as spent:
        await workers[0].xero.find_customer(seed_account)
    after = await control.stats()
    elapsed = time.monotonic() - started

    answered = [p for p in polls if isinstance(p, GetInvoiceStatusResult)]
    held = [p for p in polls if isinstance(p, ApplicationError)]
    assert len(answered) == LIMIT - RESERVE and len(held) == len(polls) - len(answered)
    for refusal in held:
        assert refusal.type == "XeroRateLimited" and not refusal.non_retryable
        # The activity is retried once the minute has room again, not at once and not after back-off.
        assert refusal.next_retry_delay is not None
        assert timedelta(seconds=5) < refusal.next_retry_delay <= timedelta(seconds=61)
    assert all(p.created and p.posted.invoice_id for p in posted)
    assert spent.value.retry_after is not None and 5 < spent.value.retry_after <= 61
    # All of it inside one minute, so the calls Xero saw are the calls in that minute window.
    assert elapsed < 60
    assert _sent(before, after) == LIMIT
    assert after["rate_limited"] == 0
    # The last answer either worker had said so too.
    assert 0 in {w.xero.client.limits.minute for w in workers if w.xero.client.limits is not None}


async def test_a_429_one_worker_gets_holds_the_other_back_without_calling_xero(
    control: XeroSandboxControl, workers: tuple[Worker, Worker], seed_account: Account
) -> None:
    refused_worker, other = workers
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=LIMIT))
    await control.set_faults(FaultConfig(rate_limit_rate=1.0))
    with pytest.raises(XeroRateLimited) as refused:
        await refused_worker.xero.find_customer(seed_account)
    await control.set_faults(FaultConfig())
    before = await control.stats()

    with pytest.raises(RateLimited) as held:
        await other.xero.find_customer(seed_account)

    after = await control.stats()
    assert refused.value.retry_after == 60.0  # Xero's own answer
    assert held.value.retry_after is not None and 50 < held.value.retry_after <= 60
    assert _sent(before, after) == 0 and after["responses_by_status"] == before["responses_by_status"]


async def test_a_short_wait_is_waited_out_inside_the_call_and_a_longer_one_fails_it(
    xero_sandbox: XeroSandboxHandle,
    spec_log: ValidationLog,
    control: XeroSandboxControl,
    entity: LegalEntity,
    ledger_url: str,
    workers: tuple[Worker, Worker],
    seed_account: Account,
) -> None:
    refused_worker, patient = workers
    impatient = _worker(xero_sandbox, spec_log, entity, ledger_url, max_wait_in_attempt=0.5)
    try:
        await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=LIMIT))
        # As when Xero answers one worker 429 with Retry-After: 2.
        refused_worker.xero.client.pacer.refused(2.0)
        started = time.monotonic()

        with pytest.raises(RateLimited) as failed:
            await impatient.xero.find_customer(seed_account)
        found = await patient.xero.find_customer(seed_account)

        elapsed = time.monotonic() - started
        assert failed.value.retry_after is not None and 0.5 < failed.value.retry_after <= 2.0
        assert found is None  # the call was made, after the wait, and answered
        assert 0 < patient.xero.client.waited_seconds <= 2.0 <= elapsed + 0.1
        assert impatient.xero.client.waited_seconds == 0
    finally:
        await impatient.xero.aclose()
        impatient.database.dispose()


async def test_the_worker_gives_the_xero_connector_the_budget_it_shares_through_the_ledger(
    ledger_url: str,
) -> None:
    settings = Settings(xero_calls_per_minute=50, xero_background_reserve=15)
    database = Database.from_url(ledger_url)
    connectors = build_connectors(settings, call_budgets=LedgerCallBudgets(database))
    try:
        xero = connectors.erps.by_system("xero")
        assert isinstance(xero, XeroConnector)
        budget = xero.client.pacer
        assert isinstance(budget, LedgerCallBudget)
        assert (budget.vendor, budget.tenant) == ("xero", settings.xero_tenant_id)
        assert (budget.per_minute, budget.background_reserve) == (50, 15)
    finally:
        await connectors.aclose()
        database.dispose()
