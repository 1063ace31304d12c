"""The whole story, end to end: Salesforce closed-won → Kantata project → approved time → invoice in the
entity's ERP → finance approval through the ingress → payment → paid, on a real Temporal dev server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from canonical import InvoiceState
from devstack.story import EU_DEAL, UK_DEAL, DealOutcome, Story, previous_period
from devstack.tryton import TrytonServer
from ledger.repository import find_external_id, get_posting, postings_for
from runs.starts import ensure_feed_poller, ensure_payment_pollers

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import target_of


@pytest.fixture
async def system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env), tryton=tryton_server
    ) as running:
        poller = await ensure_feed_poller(
            running.client, running.settings, billing_settle_seconds=1, invoice_poll_interval_seconds=5
        )
        payment_pollers = await ensure_payment_pollers(running.client, running.settings)
        yield running
        # The pollers are long-running by design; this test's worker is going away, so stop them too.
        for long_running in (poller, *payment_pollers):
            await running.client.get_workflow_handle(long_running).terminate("test finished")


async def _assert_completed(system: System, outcome: DealOutcome) -> None:
    for wf_id in (outcome.opportunity_workflow, outcome.billing_workflow, outcome.cash_workflow):
        description = await system.client.get_workflow_handle(wf_id).describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED, wf_id


async def _assert_ledger(system: System, outcome: DealOutcome) -> None:
    with system.database.session() as session:
        assert (
            find_external_id(
                session,
                entity="project",
                canonical_key=f"salesforce:{outcome.opportunity_id}",
                system="kantata",
            )
            == outcome.project_id
        )
        assert (
            find_external_id(
                session,
                entity="customer",
                canonical_key=f"salesforce:{outcome.account_id}",
                system=outcome.erp,
            )
            == outcome.erp_customer_id
        )
        [posting] = postings_for(session, project_id=outcome.project_id)
        assert posting.number == outcome.invoice_number and posting.amount == outcome.invoice_total
        assert get_posting(session, idempotency_key=posting.idempotency_key) == posting
        assert posting.state == "billed"


async def test_uk_deal_is_invoiced_in_xero_and_paid_end_to_end(system: System) -> None:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=90)
    await story.prepare()
    outcome = await story.play(UK_DEAL)

    assert outcome.paid and outcome.erp == "xero"
    await _assert_completed(system, outcome)
    await _assert_ledger(system, outcome)
    status = await system.connectors.erps.by_system("xero").get_invoice(outcome.invoice_id)
    assert status.state == InvoiceState.PAID and status.amount_due.is_zero()
    # The ids reached the CRM by upsert, and the paid state reached the CRM and the PSA.
    opportunity = await system.connectors.crm.get_opportunity(outcome.opportunity_id)
    assert opportunity.psa_project_id == outcome.project_id
    assert opportunity.erp_customer_id == outcome.erp_customer_id
    period = previous_period(datetime.now(UTC).date())
    unbilled = [
        e async for page in system.connectors.psa.time_entries(outcome.project_id, period) for e in page.items
    ]
    assert unbilled == []


async def test_eu_deal_is_invoiced_in_tryton_in_eur_and_paid_end_to_end(system: System) -> None:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=90)
    await story.prepare()
    outcome = await story.play(EU_DEAL)

    assert outcome.paid and outcome.erp == "tryton"
    assert outcome.invoice_total.currency == "EUR"
    await _assert_completed(system, outcome)
    await _assert_ledger(system, outcome)
    status = await system.connectors.erps.by_system("tryton").get_invoice(outcome.invoice_id)
    assert status.state == InvoiceState.PAID
