"""TimeToBilling by contract on real Temporal servers: caps, fixed fees by milestone, retainers, expenses."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from canonical import Period
from connectors.kantata.feed import FeedCursor
from devstack.story import previous_period, working_days
from domain.billing_policy import next_period
from ledger.repository import audit_trail
from runs.psa_feed import PsaFeedPollerInput
from runs.time_to_billing import BillNow, TimeToBillingResult, workflow_id
from sandboxes.kantata.seed import TimeLog
from workflows.psa_feed import PsaFeedPoller
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from .billing_steps import (
    approve_when_asked,
    begin_billing,
    change_contract,
    contract_of,
    deal_for,
    exceptions,
    gbp,
    kantata,
    log_approved,
    staff,
    unbilled_time,
    xero_invoices,
)
from .helpers import eventually

ONE_DAY = 480


async def test_a_not_to_exceed_cap_stops_billing_at_the_cap_and_raises_the_amount_over_to_pmo(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("2000"))).project_id
    change_contract(system, project, not_to_exceed=gbp("2000"))
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    days = working_days(period, 4)
    ids = await log_approved(
        system,
        project,
        [TimeLog(person.user_id, day, ONE_DAY) for day in days[:3]] + [TimeLog(person.user_id, days[3], 60)],
    )

    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.invoice is not None and result.invoice.total == gbp("1600.00")
    assert result.time_entries_billed == 2 and result.held_back_items == 2
    (overage,) = exceptions(system, owner="pmo")
    assert overage.record["rule"] == "over_cap" and overage.record["ids"] == ids[2:]
    # 25 hours of work at 100.00 against a 2,000.00 cap: 500.00 over it, 900.00 held back whole.
    assert overage.record["over_by"] == "500.00 GBP" and overage.record["overage"] == "900.00 GBP"
    assert "500.00 GBP over it" in overage.reason
    assert sorted(await unbilled_time(system, project, period)) == sorted(ids[2:])


async def test_expenses_are_rebilled_with_the_contracts_markup_and_expense_tax(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    change_contract(system, project, expense_tax_code="ZERORATEDOUTPUT")
    period = previous_period(datetime.now(UTC).date())
    day = working_days(period, 1)[0]
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, day, ONE_DAY)])
    async with kantata(system) as seeder:
        await seeder.log_expense(
            project, day=day, amount=gbp("200.00"), category="Travel", user_id=person.user_id
        )

    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.expenses_billed == 1 and result.invoice is not None
    assert result.invoice.total == gbp("1020.00")
    (booked,) = await xero_invoices(system, _reference(result))
    travel = next(line for line in booked["LineItems"] if "Travel" in line["Description"])
    assert travel["LineAmount"] == Decimal("220.00") and travel["TaxType"] == "ZERORATEDOUTPUT"
    assert "10% handling" in travel["Description"]


async def test_a_fixed_fee_bills_completed_milestones_at_the_schedule_and_never_its_time(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))).project_id
    schedule = {c.milestone: c.amount for c in contract_of(system, project).contract.billing_schedule}
    assert schedule == {"Design sign-off": gbp("4000.00"), "Go-live": gbp("6000.00")}
    period = Period.of(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    time_ids = await log_approved(system, project, [TimeLog(person.user_id, period.first_day, ONE_DAY)])
    async with kantata(system) as seeder:
        milestone = await seeder.complete_milestone(project, "Design sign-off")

    handle = await begin_billing(system, project, period, settle_seconds=3600)
    await handle.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.invoice is not None and result.invoice.total == gbp("4000.00")
    assert result.milestones_billed == 1 and result.time_entries_billed == 0
    (booked,) = await xero_invoices(system, _reference(result))
    assert [line["Description"] for line in booked["LineItems"]] == [
        f"Milestone: Design sign-off (completed {datetime.now(UTC).date().isoformat()})"
    ]
    assert await unbilled_time(system, project, period) == time_ids
    async with kantata(system) as seeder:
        story = await seeder.call("GET", f"/stories/{milestone}", params={"include": "external_references"})
    (reference,) = story["external_references"].values()
    assert reference["service_model_ref"] == result.invoice.number

    # Billed once: the next run finds nothing new (Go-live is not complete), and bills nothing twice.
    again = await begin_billing(system, project, period, settle_seconds=3600)
    await again.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    assert (await again.result()).outcome == "nothing_to_bill"


async def test_a_retainer_bills_its_monthly_fee_tracks_drawdown_and_bills_time_beyond_it_as_overage(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    project = (await deal_for(system, service_code="MS-RET", amount=Decimal("36000"))).project_id
    assert contract_of(system, project).contract.retainer_amount == gbp("3000.00")
    period = previous_period(datetime.now(UTC).date())
    days = working_days(period, 4)
    consultant = await staff(system, project, "Consultant")
    senior = await staff(system, project, "Senior Consultant")
    await log_approved(system, project, [TimeLog(consultant.user_id, d, ONE_DAY) for d in days[:3]])
    await log_approved(system, project, [TimeLog(senior.user_id, days[3], ONE_DAY)])

    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.invoice is not None and result.invoice.total == gbp("4200.00")
    assert result.retainer_drawdown == gbp("2400")
    assert result.time_entries_billed == 4 and await unbilled_time(system, project, period) == []
    (booked,) = await xero_invoices(system, _reference(result))
    assert [(line["Description"], line["LineAmount"]) for line in booked["LineItems"]] == [
        (f"Monthly retainer {period.value}", Decimal("3000.00")),
        ("Retainer overage: Senior Consultant", Decimal("1200.00")),
    ]
    with system.database.session() as session:
        posted = next(e for e in audit_trail(session, key=handle.id) if e.action == "invoice_posted")
    assert posted.detail["drawdown"] == "2400 GBP" and posted.detail["drawdown_hours"] == "24"

    # The retainer bills every month: next month's run is lined up, waiting for that month to close.
    following = system.client.get_workflow_handle(workflow_id(project, next_period(period.value)))
    assert (await following.describe()).status == WorkflowExecutionStatus.RUNNING
    await following.terminate("test over")


async def test_a_completed_milestone_in_the_feed_starts_billing_for_the_month_it_was_completed_in(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    project = (await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))).project_id
    poller = await system.client.start_workflow(
        PsaFeedPoller.run,
        PsaFeedPollerInput(
            psa="kantata",
            entities=tuple(system.settings.entities),
            poll_interval_seconds=0.5,
            # Kantata stamps events to the second: start a little before now, so none is missed.
            cursor=FeedCursor.starting_at(datetime.now(UTC) - timedelta(seconds=5)).model_dump(mode="json"),
        ),
        id=f"psa-feed:kantata:test-{uuid.uuid4().hex[:8]}",
        task_queue=system.task_queue,
    )
    try:
        async with kantata(system) as seeder:
            await seeder.complete_milestone(project, "Design sign-off")
        billing = system.client.get_workflow_handle(
            workflow_id(project, Period.of(datetime.now(UTC).date()).value)
        )

        async def nudged() -> bool:
            try:
                return (await billing.query(TimeToBilling.status)).approvals_seen >= 1
            except RPCError:
                return False

        await eventually(nudged, what="the milestone event to start the billing run")
        assert (await billing.query(TimeToBilling.status)).stage == "waiting_for_period_close"
        await billing.terminate("test over")
    finally:
        await poller.terminate("test over")


def _reference(result: TimeToBillingResult) -> str:
    assert result.idempotency_key is not None
    return f"PS-{result.project_id}-{result.period}-{result.idempotency_key[4:12]}"
