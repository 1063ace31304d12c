"""Contract amendments on real Temporal and the sandboxes: a change order made in Salesforce on a won deal
becomes contract version 2 in the ledger, the PSA project's budget and milestones follow, and the next
invoice bills at the new terms; a change that would leave the customer billed above the contract goes to
finance instead.

On the dev server, in real time: the effective dates are today and tomorrow by the wall clock, and the
invoices these tests post leave InvoiceToCash runs following them, which must not hold up the time-skipping
server other tests skip time on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from temporalio.testing import WorkflowEnvironment

from activities.exception_actions import RetryContext, RetryRequest, actions_for
from canonical import Period
from canonical.contract_versions import ContractVersion
from ledger.contract_versions import contract_versions
from ledger.repository import audit_trail, list_exceptions
from runs.contract_amendment import ContractAmendmentResult
from runs.contract_amendment import workflow_id as amendment_id
from runs.starts import start_opportunity_to_project
from runs.time_to_billing import BillNow, TimeToBillingResult
from sandboxes.salesforce.seed import SalesforceSeeder
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from .billing_steps import approve_when_asked, begin_billing, contract_of, deal_for, gbp, kantata


async def _edit_deal(system: System, opportunity_id: str, **fields: Any) -> None:
    """A change order: the won deal edited in Salesforce over its REST API. Here no ingress listens for
    the org's outbound message, so each test passes the notification on itself (`_notify`), as the ingress
    would; tests/ingress/test_change_orders.py has the sandbox deliver it."""
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        await salesforce.update("Opportunity", opportunity_id, fields)


async def _notify(system: System, opportunity_id: str, notification_id: str) -> str:
    """A notification about the deal as the ingress passes it on (a redelivery, or one changing nothing)."""
    return await start_opportunity_to_project(
        system.client,
        system.settings,
        crm="salesforce",
        opportunity_id=opportunity_id,
        notification_id=notification_id,
    )


def _versions(system: System, project_id: str) -> tuple[ContractVersion, ...]:
    with system.database.session() as session:
        return contract_versions(session, psa="kantata", project_id=project_id)


async def _amendment(system: System, workflow_id: str) -> ContractAmendmentResult:
    handle = system.client.get_workflow_handle(workflow_id, result_type=ContractAmendmentResult)
    result: ContractAmendmentResult = await handle.result()
    return result


async def _milestones(system: System, project_id: str) -> dict[str, Any]:
    async with kantata(system) as seeder:
        stories = await seeder.every("/stories", {"workspace_id": project_id, "with_story_type": "milestone"})
        workspace = await seeder.call("GET", f"/workspaces/{project_id}")
    (doc,) = workspace["workspaces"].values()
    return {
        "price_in_cents": doc["price_in_cents"],
        **{s["title"]: s["budget_estimate_in_cents"] for s in stories if not s.get("archived")},
    }


async def _bill_now(system: System, project_id: str, period: Period, *, first: bool) -> TimeToBillingResult:
    handle = await begin_billing(system, project_id, period, settle_seconds=3600)
    await handle.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    if first:
        await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()
    return result


async def test_a_change_order_becomes_version_two_updates_the_psa_and_bills_the_next_invoice_at_new_terms(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    deal = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
    project = deal.project_id
    today = datetime.now(UTC).date()

    await _edit_deal(
        system, deal.opportunity_id, Amount=Decimal("12000"), Amendment_Effective_Date__c=today.isoformat()
    )
    run_id = await _notify(system, deal.opportunity_id, "change-1")
    assert run_id == amendment_id("salesforce", deal.opportunity_id, "change-1")
    result = await _amendment(system, run_id)
    version = _versions(system, project)[-1]
    assert version.cause is not None and version.cause.notification_id == "change-1"

    assert result.outcome == "amended" and result.version == 2 and result.psa_updated
    assert set(result.changed) == {"budget", "not_to_exceed", "billing_schedule"}
    with system.database.session() as session:
        trail = audit_trail(session, key=f"salesforce:{deal.opportunity_id}")
    assert [v.version for v in _versions(system, project)] == [1, 2]
    assert version.effective_from == today
    assert version.cause.modified_at is not None
    changes = {c.field: (c.old, c.new) for c in version.cause.changes}
    assert changes["budget"] == ("10000.00 GBP", "12000.00 GBP")
    assert changes["billing_schedule"] == (
        "Design sign-off: 4000.00 GBP; Go-live: 6000.00 GBP",
        "Design sign-off: 4800.00 GBP; Go-live: 7200.00 GBP",
    )
    assert contract_of(system, project) == version.contract
    assert [e.action for e in trail if e.action == "contract_amended"] == ["contract_amended"]
    assert await _milestones(system, project) == {
        "price_in_cents": 1_200_000,
        "Design sign-off": 480_000,
        "Go-live": 720_000,
    }

    # A redelivered notification starts nothing new; another one about an unchanged deal changes nothing.
    assert await _notify(system, deal.opportunity_id, "change-1") == run_id
    unchanged = await _amendment(system, await _notify(system, deal.opportunity_id, "no-change"))
    assert unchanged.outcome == "unchanged" and unchanged.version == 2

    async with kantata(system) as seeder:
        await seeder.complete_milestone(project, "Design sign-off")
    billed = await _bill_now(system, project, Period.of(today), first=True)
    assert billed.invoice is not None and billed.invoice.total == gbp("4800.00")


async def test_a_milestone_completed_before_the_amendment_takes_effect_bills_the_old_charge(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    deal = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
    today = datetime.now(UTC).date()
    await _edit_deal(
        system,
        deal.opportunity_id,
        Amount=Decimal("12000"),
        Amendment_Effective_Date__c=(today + timedelta(days=1)).isoformat(),
    )
    result = await _amendment(system, await _notify(system, deal.opportunity_id, "change-later"))
    assert result.outcome == "amended" and result.version == 2
    assert _versions(system, deal.project_id)[-1].effective_from == today + timedelta(days=1)

    async with kantata(system) as seeder:
        await seeder.complete_milestone(deal.project_id, "Design sign-off")
    billed = await _bill_now(system, deal.project_id, Period.of(today), first=True)
    # Completed today, the day before version 2 takes effect: version 1's 40 % of 10,000.
    assert billed.invoice is not None and billed.invoice.total == gbp("4000.00")


async def test_a_cut_below_what_is_invoiced_goes_to_finance_and_leaves_the_contract_as_it_was(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    deal = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
    project = deal.project_id
    today = datetime.now(UTC).date()
    async with kantata(system) as seeder:
        await seeder.complete_milestone(project, "Design sign-off")
    billed = await _bill_now(system, project, Period.of(today), first=True)
    assert billed.invoice is not None and billed.invoice.total == gbp("4000.00")
    before = contract_of(system, project)

    await _edit_deal(
        system,
        deal.opportunity_id,
        Amount=Decimal("3000"),
        Amendment_Effective_Date__c=(today + timedelta(days=40)).isoformat(),
    )

    result = await _amendment(system, await _notify(system, deal.opportunity_id, "change-cut"))
    assert result.outcome == "refused" and result.version == 1 and result.exception_id is not None
    with system.database.session() as session:
        (item,) = list_exceptions(session, process="contract_amendment")
    assert item.id == result.exception_id
    versions = _versions(system, project)
    assert item.owner == "finance"
    assert item.record["billed_to_date"] == "4000.00 GBP"
    assert item.record["new_ceiling"] == "3000.00 GBP"
    assert "above it" in item.reason
    assert [v.version for v in versions] == [1]
    assert contract_of(system, project) == before
    assert (await _milestones(system, project))["price_in_cents"] == 1_000_000


async def test_a_fee_raised_after_a_milestone_was_billed_puts_all_of_the_difference_on_the_rest(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    deal = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
    project = deal.project_id
    today = datetime.now(UTC).date()
    async with kantata(system) as seeder:
        await seeder.complete_milestone(project, "Design sign-off")
    first = await _bill_now(system, project, Period.of(today), first=True)
    assert first.invoice is not None and first.invoice.total == gbp("4000.00")

    await _edit_deal(
        system, deal.opportunity_id, Amount=Decimal("12000"), Amendment_Effective_Date__c=today.isoformat()
    )
    result = await _amendment(system, await _notify(system, deal.opportunity_id, "change-after-billing"))

    assert result.outcome == "amended"
    schedule = {c.milestone: c.amount for c in contract_of(system, project).contract.billing_schedule}
    # 40 % of the new fee would be 4,800.00, but 4,000.00 is billed: Go-live carries the other 8,000.00.
    assert schedule == {"Design sign-off": gbp("4000.00"), "Go-live": gbp("8000.00")}
    assert (await _milestones(system, project))["Go-live"] == 800_000
    async with kantata(system) as seeder:
        await seeder.complete_milestone(project, "Go-live")
    second = await _bill_now(system, project, Period.of(today), first=True)
    assert second.invoice is not None and second.invoice.total == gbp("8000.00")


async def test_finances_retry_of_a_refused_amendment_reads_the_corrected_deal_again(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    deal = await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))
    today = datetime.now(UTC).date()
    async with kantata(system) as seeder:
        await seeder.complete_milestone(deal.project_id, "Design sign-off")
    await _bill_now(system, deal.project_id, Period.of(today), first=True)
    await _edit_deal(system, deal.opportunity_id, Amount=Decimal("3000"))
    refused = await _amendment(system, await _notify(system, deal.opportunity_id, "change-cut"))
    assert refused.outcome == "refused"
    with system.database.session() as session:
        (item,) = list_exceptions(session, process="contract_amendment")

    # Sales and finance agree the cut was a mistake: the deal is put back to a fee above what is invoiced.
    await _edit_deal(system, deal.opportunity_id, Amount=Decimal("11000"))
    context = RetryContext(
        client=system.client,
        task_queue=system.task_queue,
        entities=tuple(system.settings.entities),
        crm=system.connectors.crm,
        psa="kantata",
        billing_settle_seconds=1,
        invoice_poll_interval_seconds=3600,
    )
    outcome = await actions_for("contract_amendment").retry(context, item, RetryRequest(actor="finance.lead"))

    assert outcome.state == "started"
    again = await _amendment(system, outcome.workflow_id)
    assert again.outcome == "amended" and again.version == 2
    schedule = {c.milestone: c.amount for c in contract_of(system, deal.project_id).contract.billing_schedule}
    assert schedule == {"Design sign-off": gbp("4000.00"), "Go-live": gbp("7000.00")}
