"""Who may approve a TimeToBilling invoice, and when: only a validated update naming the waiting invoice's
version and total decides, once, while it waits; the shipped signals no longer decide a new run."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError

from canonical import Money, Period
from devstack.story import previous_period, working_days
from ledger.records import AuditEntry
from ledger.repository import audit_trail, postings_for
from runs.time_to_billing import ApprovalDecision, ApprovalRecorded, BillNow, TimeToBillingResult
from sandboxes.kantata.seed import TimeLog
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from .billing_steps import as_seen, begin_billing, deal_for, log_approved, staff, wait_for_stage
from .helpers import eventually

# Where a run goes once its invoice is approved.
AFTER_APPROVAL = ("posting", "marking_billed", "following_payment", "done")


@dataclass
class Run:
    handle: WorkflowHandle[Any, Any]
    project_id: str
    period: Period


async def a_first_invoice(system: System, **changes: Any) -> Run:
    """A project's first invoice (two days at 800.00): policy makes finance approve it."""
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(
        system, project, [TimeLog(person.user_id, day, 480) for day in working_days(period, 2)]
    )
    return Run(await begin_billing(system, project, period, **changes), project, period)


async def waiting(system: System, **changes: Any) -> Run:
    run = await a_first_invoice(system, **changes)
    await wait_for_stage(run.handle, "awaiting_approval")
    return run


def audit(system: System, run: Run, action: str) -> list[AuditEntry]:
    with system.database.session() as session:
        return [e for e in audit_trail(session, key=run.handle.id) if e.action == action]


async def audited(system: System, run: Run, action: str, count: int = 1) -> list[AuditEntry]:
    """The run's audit entries for `action`, once there are `count` of them (the audit is written async)."""

    async def probe() -> list[AuditEntry] | None:
        found = audit(system, run, action)
        return found if len(found) >= count else None

    entries: list[AuditEntry] = await eventually(probe, what=f"{count} {action} audit entries")
    return entries


def posted(system: System, run: Run) -> list[Any]:
    with system.database.session() as session:
        return list(postings_for(session, project_id=run.project_id))


async def refusal(run: Run, update: Any, decision: ApprovalDecision) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await run.handle.execute_update(update, decision)
    return str(refused.value.cause)


async def test_the_waiting_invoice_reads_as_a_decision_must_name_it_and_the_approver_is_audited(
    ts_system: System,
) -> None:
    run = await waiting(ts_system)
    status = await run.handle.query(TimeToBilling.status)
    pending = await run.handle.query(TimeToBilling.pending_approval)

    assert pending is not None
    assert pending.workflow_id == run.handle.id and pending.project_id == run.project_id
    assert pending.period == run.period.value and pending.legal_entity == "UK" and pending.customer
    assert pending.total == status.total == Money.of("1600.00", "GBP")
    assert pending.reason == status.approval_reason == "first invoice of the project"
    assert [line.kind for line in pending.lines] == ["time"]
    assert Decimal(pending.lines[0].quantity) == 16 and pending.lines[0].amount == pending.total
    assert pending.asked_at < pending.remind_at < pending.escalate_at and pending.version

    recorded: ApprovalRecorded = await run.handle.execute_update(
        TimeToBilling.approve_invoice, await as_seen(run.handle, "Fiona Finance <u-fiona>")
    )

    assert recorded.decision == "approved" and recorded.decided_by == "Fiona Finance <u-fiona>"
    assert recorded.invoice_version == pending.version
    assert await run.handle.query(TimeToBilling.pending_approval) is None
    assert (await run.handle.result()).outcome == "posted"
    (approved,) = audit(ts_system, run, "invoice_approved")
    assert approved.detail["approver"] == "Fiona Finance <u-fiona>"
    assert approved.detail["version"] == pending.version


async def test_an_approval_sent_before_the_invoice_exists_is_refused_and_does_not_post_it(
    ts_system: System,
) -> None:
    run = await a_first_invoice(ts_system, settle_seconds=3600)
    await wait_for_stage(run.handle, "settling")
    early = ApprovalDecision(
        approver="finance", invoice_version="any", expected_total=Money.of("1600.00", "GBP")
    )

    refused = await refusal(run, TimeToBilling.approve_invoice, early)
    await run.handle.signal(TimeToBilling.approve, early)
    await run.handle.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    await wait_for_stage(run.handle, "awaiting_approval", *AFTER_APPROVAL)
    # Time for an early approval, had it been remembered, to have posted the invoice.
    await asyncio.sleep(2)

    assert "no invoice is waiting for approval" in refused and "settling" in refused
    assert (await run.handle.query(TimeToBilling.status)).stage == "awaiting_approval"
    assert posted(ts_system, run) == [] and audit(ts_system, run, "invoice_approved") == []
    assert await run.handle.query(TimeToBilling.pending_approval) is not None
    (ignored,) = await audited(ts_system, run, "approval_signal_ignored")
    assert ignored.detail["signal"] == "approve" and ignored.detail["stage"] == "settling"


async def test_a_decision_on_another_total_or_version_or_naming_neither_is_refused_saying_what_waits(
    ts_system: System,
) -> None:
    run = await waiting(ts_system)
    seen = await as_seen(run.handle, "finance")
    assert seen.expected_total is not None and seen.invoice_version is not None
    other_total = seen.model_copy(update={"expected_total": Money.of("1.00", "GBP")})
    other_version = seen.model_copy(update={"invoice_version": seen.invoice_version + "-stale"})
    unnamed = ApprovalDecision(approver="finance")

    told = [
        await refusal(run, TimeToBilling.approve_invoice, other_total),
        await refusal(run, TimeToBilling.approve_invoice, other_version),
        await refusal(run, TimeToBilling.reject_invoice, other_total.model_copy(update={"reason": "no PO"})),
    ]
    missing = await refusal(run, TimeToBilling.approve_invoice, unnamed)

    now = f"it now totals 1600.00 GBP (version {seen.invoice_version})"
    assert all("the invoice changed" in message and now in message for message in told), told
    assert "must name the invoice" in missing and seen.invoice_version in missing
    assert (await run.handle.query(TimeToBilling.status)).stage == "awaiting_approval"
    assert await run.handle.query(TimeToBilling.pending_approval) is not None
    assert posted(ts_system, run) == []


async def test_two_approvals_at_once_one_wins_and_the_other_is_refused_naming_the_winner(
    ts_system: System,
) -> None:
    run = await waiting(ts_system)
    fiona, frank = await as_seen(run.handle, "Fiona"), await as_seen(run.handle, "Frank")

    answers = await asyncio.gather(
        run.handle.execute_update(TimeToBilling.approve_invoice, fiona),
        run.handle.execute_update(TimeToBilling.approve_invoice, frank),
        return_exceptions=True,
    )

    (won,) = [a for a in answers if isinstance(a, ApprovalRecorded)]
    (lost,) = [a for a in answers if isinstance(a, WorkflowUpdateFailedError)]
    assert won.decided_by in ("Fiona", "Frank") and won.decision == "approved"
    assert f"already approved by {won.decided_by}" in str(lost.cause)
    assert (await run.handle.result()).outcome == "posted"
    assert len(posted(ts_system, run)) == 1
    (approved,) = audit(ts_system, run, "invoice_approved")
    assert approved.detail["approver"] == won.decided_by


async def test_an_approval_racing_a_rejection_exactly_one_wins_and_each_caller_learns_which(
    ts_system: System,
) -> None:
    run = await waiting(ts_system)
    approval = await as_seen(run.handle, "Fiona")
    rejection = await as_seen(run.handle, "Frank", reason="wrong PO number")

    answers = await asyncio.gather(
        run.handle.execute_update(TimeToBilling.approve_invoice, approval),
        run.handle.execute_update(TimeToBilling.reject_invoice, rejection),
        return_exceptions=True,
    )

    (won,) = [a for a in answers if isinstance(a, ApprovalRecorded)]
    (lost,) = [a for a in answers if isinstance(a, WorkflowUpdateFailedError)]
    expected = {"approved": "Fiona", "rejected": "Frank"}[won.decision]
    assert won.decided_by == expected
    assert f"already {won.decision} by {expected}" in str(lost.cause)
    result: TimeToBillingResult = await run.handle.result()
    assert result.outcome == {"approved": "posted", "rejected": "rejected"}[won.decision]
    assert len(posted(ts_system, run)) == (1 if won.decision == "approved" else 0)


async def test_the_shipped_signals_no_longer_decide_a_new_run(ts_system: System) -> None:
    run = await waiting(ts_system)
    seen = await as_seen(run.handle, "anyone at all")

    await run.handle.signal(TimeToBilling.approve, seen)
    await run.handle.signal(TimeToBilling.reject, seen.model_copy(update={"reason": "because"}))
    # Time for either signal, had it decided, to have moved the run on.
    await asyncio.sleep(2)

    assert (await run.handle.query(TimeToBilling.status)).stage == "awaiting_approval"
    assert posted(ts_system, run) == [] and await run.handle.query(TimeToBilling.pending_approval) is not None
    ignored = await audited(ts_system, run, "approval_signal_ignored", count=2)
    claimed = {entry.detail["signal"]: entry.detail["claimed_approver"] for entry in ignored}
    assert claimed == {"approve": "anyone at all", "reject": "anyone at all"}

    recorded = await run.handle.execute_update(
        TimeToBilling.approve_invoice, await as_seen(run.handle, "Fiona")
    )
    assert recorded.decided_by == "Fiona"
    assert (await run.handle.result()).outcome == "posted"
