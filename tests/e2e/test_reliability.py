"""The story survives a flaky world: every vendor answering 5xx, 429 and cut connections at random
(seeded, so a failure replays exactly), and still ends with one project, one invoice, and a paid state."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.story import UK_DEAL, Story, previous_period
from runs.invoice_to_cash import InvoiceToCashResult
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.starts import ensure_feed_poller
from runs.time_to_billing import TimeToBillingResult
from runs.time_to_billing import workflow_id as ttb_id
from sandboxes.faults import FaultConfig
from sandboxes.xero.seed import XeroFinanceUser

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import target_of

FLAKY = FaultConfig(
    seed=20261122,
    server_error_rate=0.15,
    rate_limit_rate=0.1,
    drop_rate=0.05,
    latency_ms=5,
    latency_jitter_ms=20,
)


@pytest.fixture
async def system(dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env)
    ) as running:
        poller = await ensure_feed_poller(
            running.client, running.settings, billing_settle_seconds=1, invoice_poll_interval_seconds=2
        )
        yield running
        await running.client.get_workflow_handle(poller).terminate("test finished")


def flaky(sandboxes: Sandboxes, on: bool) -> None:
    """Faults on the vendors while ps-sync works; off while the story plays the people using them."""
    config = FLAKY if on else FaultConfig()
    for served in (sandboxes.salesforce, sandboxes.kantata, sandboxes.xero):
        httpx.put(f"{served.url}/_sandbox/faults", json=config.model_dump()).raise_for_status()


def injected(sandboxes: Sandboxes) -> int:
    total = 0
    for served in (sandboxes.salesforce, sandboxes.kantata, sandboxes.xero):
        stats = httpx.get(f"{served.url}/_sandbox/stats").json()
        faults = stats.get("injected_faults") or stats.get("faults") or stats.get("injected") or {}
        total += sum(int(count) for count in faults.values())
    return total


async def test_story_completes_exactly_once_while_every_vendor_fails_at_random(system: System) -> None:
    sandboxes = system.sandboxes
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=150)
    await story.prepare()
    deal = await story.close_a_deal(UK_DEAL, uuid.uuid4().hex[:8])

    flaky(sandboxes, True)
    created: OpportunityToProjectResult = await story.result(
        o2p_id("salesforce", deal.opportunity_id), OpportunityToProjectResult
    )
    faults_during_setup = injected(sandboxes)
    flaky(sandboxes, False)

    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=5)
    flaky(sandboxes, True)
    billing_id = ttb_id(created.project_id, period.value)
    await story.approve_when_asked(billing_id, created.project_id, period)
    billed: TimeToBillingResult = await story.result(billing_id, TimeToBillingResult)
    assert billed.outcome == "posted" and billed.invoice is not None
    faults_during_billing = injected(sandboxes)
    flaky(sandboxes, False)

    await story.pay("xero", billed.invoice.invoice_id, "flaky")
    flaky(sandboxes, True)
    assert billed.invoice_to_cash_workflow_id is not None
    cash: InvoiceToCashResult = await story.result(billed.invoice_to_cash_workflow_id, InvoiceToCashResult)
    flaky(sandboxes, False)

    assert cash.outcome == "paid"
    # The faults really happened, so this is not a fair-weather pass.
    assert faults_during_setup > 0 and faults_during_billing > 0
    # Exactly once, despite the retries: one project for the deal, one invoice for the reference.
    psa = system.connectors.psa
    project = await psa.find_project(f"salesforce:{deal.opportunity_id}")
    assert project is not None and project.id == created.project_id
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        invoices = (
            await finance.call(
                "GET", "/Invoices", params={"where": f'Contact.ContactID==Guid("{created.erp_customer_id}")'}
            )
        )["Invoices"]
    finally:
        await finance.aclose()
    assert [invoice["InvoiceID"] for invoice in invoices] == [billed.invoice.invoice_id]
