"""The demo story as `make run` plays it, with finance's account mapping set through the ingress first: the
UK and EU invoices land on the mapped accounts with the project's and customer's dimensions in each ERP, and
the EU deal's lines (a service of the Digital practice) on its practice in Tryton too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.story import ACCOUNT_MAPPING, EU_DEAL, UK_DEAL, DealPlan, Story
from devstack.tryton import TrytonServer
from ledger.account_mapping import list_account_mappings
from ledger.repository import get_contract
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
        for long_running in (poller, *payment_pollers):
            await running.client.get_workflow_handle(long_running).terminate("test finished")


@pytest.mark.parametrize(("plan", "account"), [(UK_DEAL, "200"), (EU_DEAL, "4.1.2")], ids=["uk", "eu"])
async def test_the_demos_invoices_land_on_mapped_accounts_with_project_and_customer_dimensions(
    system: System, plan: DealPlan, account: str
) -> None:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=90)
    await story.prepare()
    await story.map_accounts()
    outcome = await story.play(plan)

    assert outcome.paid
    with system.database.session() as session:
        mapped = list_account_mappings(session, legal_entity=plan.entity)
        contract = get_contract(session, psa="kantata", project_id=outcome.project_id)
    # Set through the ingress as the finance lead: the rules name the person of the token.
    assert len(mapped) == len([m for m in ACCOUNT_MAPPING if m[0] == plan.entity])
    assert all(m.updated_by.startswith("finance.lead <") for m in mapped)
    assert contract is not None and contract.erp_project is not None
    expected = {(v.dimension, v.code) for v in contract.erp_project.dimensions}
    # Xero tracks the UK entity's default two; Tryton books every dimension the project has.
    practice = {("practice", "DIGITAL")} if plan is EU_DEAL else set()
    assert {(d, c) for d, c in expected if d == "practice"} == practice
    assert {d for d, _ in expected} == {"project", "customer"} | {d for d, _ in practice}
    erp = system.connectors.erps.by_system(outcome.erp)
    (booked,) = [
        b
        for b in await erp.booked_invoices(f"PS-{outcome.project_id}-")  # type: ignore[attr-defined]
        if b.invoice_id == outcome.invoice_id
    ]
    assert booked.lines
    for line in booked.lines:
        assert line.account_code == account
        assert {(v.dimension, v.code) for v in line.dimensions} == expected
