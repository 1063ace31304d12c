"""TimeToBilling on real Temporal servers: approval waits, escalation, posting exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from canonical import InvoiceState, Money
from devstack.story import previous_period, working_days
from domain.business_days import add_business_days
from ledger.repository import audit_trail, list_exceptions, postings_for
from runs import search_attributes as sa
from runs.time_to_billing import ApprovalDecision, BillNow, TimeToBillingResult
from sandboxes.kantata.seed import TimeLog
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from .billing_steps import (
    as_seen,
    begin_billing,
    deal_for,
    exceptions,
    log_approved,
    posted_numbers,
    staff,
    unbilled_time,
    wait_for_stage,
)
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, start_billing


async def _stage(handle, stage: str) -> bool:  # type: ignore[no-untyped-def]
    return (await handle.query(TimeToBilling.status)).stage == stage


async def _sync_stage(handle: WorkflowHandle[Any, Any]) -> str | None:
    return (await handle.describe()).typed_search_attributes.get(sa.SYNC_STAGE)


# A skip runs everything due on the test server before it answers: skipping days in one call can outlast
# the call's deadline on a busy worker, so long skips go a day at a time (the same instants are reached).
SKIP_STEP = timedelta(days=1)


async def _sleep_until(env: WorkflowEnvironment, instant: datetime) -> None:
    while (left := instant - await env.get_current_time()) > SKIP_STEP:
        await env.sleep(SKIP_STEP)
    await env.sleep(max(left, timedelta(seconds=1)))


async def test_invoice_over_threshold_without_approval_reminds_then_escalates_instead_of_posting(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    story = await prepared_story(ts_system)
    created = await project_from_a_won_deal(ts_system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=5)

    handle = await start_billing(ts_system, created.project_id, period=period)
    await eventually(lambda: _stage(handle, "awaiting_approval"), what="the run to ask finance")
    # Deadlines count business days from the moment finance was asked, whatever weekday the test runs on.
    asked = await ts_env.get_current_time()
    reminder, escalation = add_business_days(asked, 2), add_business_days(asked, 5)

    await _sleep_until(ts_env, reminder - timedelta(hours=1))
    status = await handle.query(TimeToBilling.status)
    assert not status.approval_reminded and status.stage == "awaiting_approval"

    await _sleep_until(ts_env, reminder + timedelta(minutes=1))
    status = await handle.query(TimeToBilling.status)
    assert status.approval_reminded and not status.approval_escalated
    assert status.stage == "approval_reminded"
    assert await _sync_stage(handle) == "approval_reminded"

    await _sleep_until(ts_env, escalation - timedelta(hours=1))
    assert not (await handle.query(TimeToBilling.status)).approval_escalated

    await _sleep_until(ts_env, escalation + timedelta(minutes=1))
    status = await handle.query(TimeToBilling.status)
    assert status.approval_escalated and status.stage == "approval_escalated"
    assert status.invoice_number is None
    assert await _sync_stage(handle) == "approval_escalated"
    owner = (await handle.describe()).typed_search_attributes.get(sa.EXCEPTION_OWNER)
    assert owner == "finance"
    with ts_system.database.session() as session:
        assert postings_for(session, project_id=created.project_id) == []
        escalations = [e for e in list_exceptions(session, owner="finance") if "escalated" in e.reason]
    assert len(escalations) == 1
    assert escalations[0].workflow_id == handle.id

    # Finance can still approve after the escalation, and the invoice is then posted once.
    await handle.execute_update(TimeToBilling.approve_invoice, await as_seen(handle, "finance.lead"))
    result: TimeToBillingResult = await handle.result()
    assert result.outcome == "posted" and result.invoice is not None
    assert result.invoice.state == InvoiceState.AWAITING_PAYMENT
    with ts_system.database.session() as session:
        postings = postings_for(session, project_id=created.project_id)
    assert [p.number for p in postings] == [result.invoice.number]


async def test_rejected_invoice_posts_nothing_and_leaves_entries_unbilled(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    story = await prepared_story(ts_system)
    created = await project_from_a_won_deal(ts_system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=5)

    handle = await start_billing(ts_system, created.project_id, period=period)
    await eventually(lambda: _stage(handle, "awaiting_approval"), what="the run to ask finance")
    await handle.execute_update(
        TimeToBilling.reject_invoice, await as_seen(handle, "finance", reason="wrong PO number")
    )
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "rejected" and result.reason == "finance: wrong PO number"
    with ts_system.database.session() as session:
        assert postings_for(session, project_id=created.project_id) == []
    unbilled = [
        entry
        async for page in ts_system.connectors.psa.time_entries(created.project_id, period)
        for entry in page.items
    ]
    assert len(unbilled) == 10 and not any(entry.billed for entry in unbilled)


async def test_the_first_invoice_of_a_project_waits_for_finance_even_below_the_threshold(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    project = (await deal_for(ts_system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    first_day, second_day = working_days(period, 2)
    person = await staff(ts_system, project, "Consultant")
    await log_approved(ts_system, project, [TimeLog(person.user_id, first_day, 480)])

    handle = await begin_billing(ts_system, project, period)
    status = await wait_for_stage(handle, "awaiting_approval")
    assert status.approval_reason == "first invoice of the project"
    assert status.total == Money.of("800.00", "GBP") < ts_system.settings.entity("UK").approval_threshold
    await handle.execute_update(TimeToBilling.approve_invoice, await as_seen(handle, "finance"))
    assert (await handle.result()).outcome == "posted"

    # The project's next invoice is below the threshold: it posts without asking anyone.
    await log_approved(ts_system, project, [TimeLog(person.user_id, second_day, 480)])
    second = await begin_billing(ts_system, project, period)
    result: TimeToBillingResult = await second.result()
    assert result.outcome == "posted"
    assert not (await second.query(TimeToBilling.status)).approval_required


async def test_a_later_invoice_above_the_entitys_threshold_waits_for_finance(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    project = (await deal_for(ts_system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    days = working_days(period, 8)
    person = await staff(ts_system, project, "Consultant")
    await log_approved(ts_system, project, [TimeLog(person.user_id, days[0], 480)])
    first = await begin_billing(ts_system, project, period)
    await wait_for_stage(first, "awaiting_approval")
    await first.execute_update(TimeToBilling.approve_invoice, await as_seen(first, "finance"))
    billed: TimeToBillingResult = await first.result()
    assert billed.outcome == "posted" and billed.invoice is not None

    # Seven more days at 800.00 a day: 5,600.00 against the UK threshold of 5,000.00.
    await log_approved(ts_system, project, [TimeLog(person.user_id, day, 480) for day in days[1:]])
    second = await begin_billing(ts_system, project, period)
    status = await wait_for_stage(second, "awaiting_approval")
    threshold = ts_system.settings.entity("UK").approval_threshold
    assert status.total == Money.of("5600.00", "GBP") > threshold
    assert status.approval_reason == f"total {status.total} is above the UK approval threshold {threshold}"
    assert posted_numbers(ts_system, project) == [billed.invoice.number]
    await second.execute_update(TimeToBilling.approve_invoice, await as_seen(second, "finance"))
    result: TimeToBillingResult = await second.result()
    assert result.outcome == "posted" and result.invoice is not None
    assert result.invoice.total == Money.of("5600.00", "GBP")


async def test_approval_updates_are_refused_when_no_invoice_waits_and_a_rejection_needs_a_reason(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    project = (await deal_for(ts_system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(ts_system, project, "Consultant")
    await log_approved(ts_system, project, [TimeLog(person.user_id, working_days(period, 1)[0], 480)])

    handle = await begin_billing(ts_system, project, period, settle_seconds=3600)
    await wait_for_stage(handle, "settling")
    with pytest.raises(WorkflowUpdateFailedError) as early:
        await handle.execute_update(TimeToBilling.approve_invoice, ApprovalDecision(approver="finance"))
    assert "no invoice is waiting for approval" in str(early.value.cause)

    await handle.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    await wait_for_stage(handle, "awaiting_approval")
    with pytest.raises(WorkflowUpdateFailedError) as bare:
        await handle.execute_update(TimeToBilling.reject_invoice, ApprovalDecision(approver="finance"))
    assert "needs a reason" in str(bare.value.cause)
    assert (await handle.query(TimeToBilling.status)).stage == "awaiting_approval"


async def test_a_rejection_releases_the_entries_unbilled_with_the_reason_for_the_pmo(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    project = (await deal_for(ts_system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(ts_system, project, "Consultant")
    ids = await log_approved(
        ts_system, project, [TimeLog(person.user_id, day, 480) for day in working_days(period, 2)]
    )

    handle = await begin_billing(ts_system, project, period)
    await wait_for_stage(handle, "awaiting_approval")
    recorded = await handle.execute_update(
        TimeToBilling.reject_invoice, await as_seen(handle, "finance", reason="PO 4711 is closed")
    )
    assert recorded.decision == "rejected"
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "rejected" and result.reason == "finance: PO 4711 is closed"
    (released,) = exceptions(ts_system, owner="pmo")
    assert "PO 4711 is closed" in released.reason
    assert released.record["released"] == {"time_entries": 2, "expenses": 0, "milestones": 0}
    assert sorted(released.record["time_entry_ids"]) == sorted(ids)
    assert sorted(await unbilled_time(ts_system, project, period)) == sorted(ids)
    with ts_system.database.session() as session:
        assert postings_for(session, project_id=project) == []
        rejected = [e for e in audit_trail(session, key=handle.id) if e.action == "invoice_rejected"]
    assert rejected[0].detail["reason"] == "finance: PO 4711 is closed"
