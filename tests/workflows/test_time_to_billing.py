"""TimeToBilling on real Temporal servers: approval waits, escalation, posting exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.testing import WorkflowEnvironment

from pssync.canonical import InvoiceState
from pssync.devstack.story import previous_period
from pssync.ledger.repository import list_exceptions, postings_for
from pssync.workflows.time_to_billing import ApprovalDecision, TimeToBilling, TimeToBillingResult

from ..support.system import System
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, start_billing


async def _stage(handle, stage: str) -> bool:  # type: ignore[no-untyped-def]
    return (await handle.query(TimeToBilling.status)).stage == stage


async def test_invoice_over_threshold_without_approval_reminds_then_escalates_instead_of_posting(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    story = await prepared_story(ts_system)
    created = await project_from_a_won_deal(ts_system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=5)

    handle = await start_billing(ts_system, created.project_id, period=period)
    await eventually(lambda: _stage(handle, "awaiting_approval"), what="the run to ask finance")

    await ts_env.sleep(timedelta(days=3))
    status = await handle.query(TimeToBilling.status)
    assert status.approval_reminded and not status.approval_escalated
    assert status.stage == "approval_reminded"

    await ts_env.sleep(timedelta(days=5))
    status = await handle.query(TimeToBilling.status)
    assert status.approval_escalated and status.stage == "approval_escalated"
    assert status.invoice_number is None
    with ts_system.database.session() as session:
        assert postings_for(session, project_id=created.project_id) == []
        escalations = [e for e in list_exceptions(session, owner="finance") if "escalated" in e.reason]
    assert len(escalations) == 1
    assert escalations[0].workflow_id == handle.id

    # Finance can still approve after the escalation, and the invoice is then posted once.
    await handle.signal(TimeToBilling.approve, ApprovalDecision(approver="finance.lead"))
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
    await handle.signal(TimeToBilling.reject, ApprovalDecision(approver="finance", reason="wrong PO number"))
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
