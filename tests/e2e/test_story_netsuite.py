"""The US deal end to end: Salesforce closed-won -> Kantata project -> approved time -> invoice in NetSuite
(USD, the US entity's ERP) -> finance approval through the ingress -> payment accepted in NetSuite -> paid,
on a real Temporal dev server. The NetSuite payment poller finds the payment; nothing names NetSuite but
the entity's configuration."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from canonical import InvoiceState
from connectors.netsuite.connector import NetSuiteConnector
from devstack.story import US_DEAL, Story
from ledger.repository import find_external_id, postings_for
from runs.starts import ensure_feed_poller, ensure_payment_pollers

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import target_of


@pytest.fixture
async def system(dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env)
    ) as running:
        poller = await ensure_feed_poller(
            running.client, running.settings, billing_settle_seconds=1, invoice_poll_interval_seconds=5
        )
        us_only = running.settings.model_copy(
            update={"entities": [running.settings.entity("US")], "payment_poll_interval_seconds": 1.0}
        )
        payment_pollers = await ensure_payment_pollers(running.client, us_only)
        yield running
        for long_running in (poller, *payment_pollers):
            await running.client.get_workflow_handle(long_running).terminate("test finished")


async def test_us_deal_is_invoiced_in_netsuite_in_usd_and_paid_end_to_end(system: System) -> None:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=90)
    await story.prepare()
    outcome = await story.play(US_DEAL)

    assert outcome.paid and outcome.erp == "netsuite"
    assert outcome.invoice_total.currency == "USD"
    # 5 days x 8 h for each of the two consultants, at the USD rate card: 40 x 195 + 40 x 132.50.
    assert outcome.invoice_total.amount == Decimal("13100.00")
    for workflow_id in (outcome.opportunity_workflow, outcome.billing_workflow, outcome.cash_workflow):
        description = await system.client.get_workflow_handle(workflow_id).describe()
        assert description.status == WorkflowExecutionStatus.COMPLETED, workflow_id
    with system.database.session() as session:
        assert (
            find_external_id(
                session,
                entity="customer",
                canonical_key=f"salesforce:{outcome.account_id}",
                system="netsuite",
            )
            == outcome.erp_customer_id
        )
        [posting] = postings_for(session, project_id=outcome.project_id)
        assert posting.number == outcome.invoice_number and posting.amount == outcome.invoice_total
    netsuite = system.connectors.erps.by_system("netsuite")
    status = await netsuite.get_invoice(outcome.invoice_id)
    assert status.state == InvoiceState.PAID and status.amount_due.is_zero()
    # US-SALES-6: the gross the customer paid is the net plus 6 % tax.
    assert status.amount_paid.amount == Decimal("13886.00")
    # Closed-won made the project's job under the customer; the invoice names it as its Customer:Project.
    assert isinstance(netsuite, NetSuiteConnector)
    record = await netsuite.client.get_record("invoice", outcome.invoice_id)
    job = await netsuite.client.get_record("job", record["entity"]["id"])
    assert job["externalId"] == f"psa-project:{outcome.project_id}"
    assert job["parent"]["id"] == outcome.erp_customer_id
    with system.database.session() as session:
        made_at_closed_won = find_external_id(
            session, entity="erp_project", canonical_key=f"kantata:{outcome.project_id}", system="netsuite"
        )
    assert made_at_closed_won == job["id"]
    opportunity = await system.connectors.crm.get_opportunity(outcome.opportunity_id)
    assert opportunity.erp_customer_id == outcome.erp_customer_id
