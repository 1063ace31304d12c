"""Finance's approval of an invoice: the messages finance sends, and the wait for them.

The run asks only when the billing policy names a reason (see `domain.billing_policy.approval_reason`);
until finance decides, nothing is posted and nothing is marked, so a rejection simply releases the work.

A decision counts only as a validated update naming the waiting invoice's version and total: a person can
approve only what they have seen, only while it waits, and of two decisions exactly one wins.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import AuditInput, LedgerActivities
    from canonical import ExceptionOwner, Invoice, InvoiceLine, LegalEntity
    from domain.business_days import add_business_days
    from domain.idempotency import digest
    from domain.rating import RatedWork
    from runs.time_to_billing import (
        ApprovalDecision,
        ApprovalRecorded,
        PendingApproval,
        PendingLine,
        TimeToBillingInput,
    )
    from workflows.options import LEDGER_CALL

from workflows.billing.run_state import BillingRun

APPROVAL_STAGES = ("awaiting_approval", "approval_reminded", "approval_escalated")

# The `approve`/`reject` signals once decided, unchecked and at any time. Recorded histories replay them as
# they were taken; a new run takes no decision from them.
SIGNALS_DO_NOT_DECIDE = "approval-only-by-validated-update"
# A run started before that change may already hold a signal decision taken while it was still collecting;
# once it asks finance it drops that decision rather than post on an approval of nothing.
NO_DECISION_BEFORE_ASKING = "approval-not-before-asking"


class ApprovalRefused(ApplicationError):
    """A decision the run did not take; the message is what the person is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="ApprovalRefused", non_retryable=True)


class Approval(BillingRun):
    # --- the shipped signals: no longer decide anything in a new run ---------------------------------------

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def approve(self, decision: ApprovalDecision) -> None:
        if workflow.patched(SIGNALS_DO_NOT_DECIDE):
            await self._ignore_signal("approve", decision)
            return
        self._decide("approved", decision)

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def reject(self, decision: ApprovalDecision) -> None:
        if workflow.patched(SIGNALS_DO_NOT_DECIDE):
            await self._ignore_signal("reject", decision)
            return
        self._decide("rejected", decision)

    async def _ignore_signal(self, name: str, decision: ApprovalDecision) -> None:
        # A signal's sender is never told it was ignored, and its approver is whatever the sender wrote: the
        # audit is where someone still using it finds out.
        workflow.logger.warning(
            "ignored the %s signal (approver %r): decisions are taken only as the %s_invoice update",
            name,
            decision.approver,
            name,
        )
        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(
                action="approval_signal_ignored",
                entity="billing_run",
                key=workflow.info().workflow_id,
                detail={"signal": name, "claimed_approver": decision.approver, "stage": self._stage},
            ),
            **LEDGER_CALL,
        )

    # --- decisions ------------------------------------------------------------------------------------------

    @workflow.update
    def approve_invoice(self, decision: ApprovalDecision) -> ApprovalRecorded:
        """Approve the waiting invoice; refused unless it waits and the caller names its version and total."""
        # Checked again here: only what the handler sees, one update at a time, decides who wins.
        self._refuse_unless_waiting_for(decision)
        return self._decide("approved", decision)

    @approve_invoice.validator
    def _approvable(self, decision: ApprovalDecision) -> None:
        self._refuse_unless_waiting_for(decision)

    @workflow.update
    def reject_invoice(self, decision: ApprovalDecision) -> ApprovalRecorded:
        """Reject the waiting invoice, with a reason; refused like `approve_invoice`."""
        self._refuse_unless_waiting_for(decision, rejecting=True)
        return self._decide("rejected", decision)

    @reject_invoice.validator
    def _rejectable(self, decision: ApprovalDecision) -> None:
        self._refuse_unless_waiting_for(decision, rejecting=True)

    @workflow.query
    def pending_approval(self) -> PendingApproval | None:
        """The invoice waiting for finance, as a decision must name it; None when nothing waits."""
        if self._decided is not None or self._stage not in APPROVAL_STAGES:
            return None
        return self._pending

    def _refuse_unless_waiting_for(self, decision: ApprovalDecision, *, rejecting: bool = False) -> None:
        decided, pending = self._decided, self._pending
        if decided is not None:
            raise ApprovalRefused(
                f"already {decided.decision} by {decided.decided_by}"
                + (f" (version {decided.invoice_version})" if decided.invoice_version else "")
                + ": nothing is waiting for a decision"
            )
        if pending is None or self._stage not in APPROVAL_STAGES:
            raise ApprovalRefused(f"no invoice is waiting for approval in this run (stage {self._stage})")
        if rejecting and not (decision.reason and decision.reason.strip()):
            raise ApprovalRefused("a rejection needs a reason: it travels back with the entries")
        if decision.invoice_version is None or decision.expected_total is None:
            raise ApprovalRefused(
                "a decision must name the invoice it is about: the waiting invoice totals "
                f"{pending.total} (version {pending.version})"
            )
        if decision.invoice_version != pending.version or decision.expected_total != pending.total:
            raise ApprovalRefused(
                f"the invoice changed: it now totals {pending.total} (version {pending.version}), "
                f"not {decision.expected_total} (version {decision.invoice_version})"
            )

    def _decide(self, verdict: str, decision: ApprovalDecision) -> ApprovalRecorded:
        if verdict == "approved":
            self._approved_by = decision.approver
        else:
            self._rejected_because = f"{decision.approver}: {decision.reason or 'no reason given'}"
        self._decided = ApprovalRecorded(
            decision=verdict,
            stage=self._stage,
            decided_by=decision.approver,
            invoice_version=self._pending.version if self._pending else None,
        )
        return self._decided

    # --- the wait -------------------------------------------------------------------------------------------

    async def _await_finance(
        self,
        input: TimeToBillingInput,
        invoice: Invoice,
        entity: LegalEntity,
        why: str,
        key: str | None = None,
    ) -> str | None:
        """Wait for finance: remind after 2 business days, escalate after 5. Returns a rejection or None."""
        if self._decided is not None and workflow.patched(NO_DECISION_BEFORE_ASKING):
            early, self._decided = self._decided, None
            self._approved_by = self._rejected_because = None
            await self._audit(
                "approval_decision_discarded",
                input,
                {"decision": early.decision, "claimed_by": early.decided_by, "why": "taken before asked"},
            )
        self._approval_required, self._approval_reason = True, why
        self._set_stage("awaiting_approval", ExceptionOwner.FINANCE)
        await self._audit(
            "approval_requested",
            input,
            {"total": str(invoice.total), "threshold": str(entity.approval_threshold), "why": why},
        )
        asked_at = workflow.now()
        deadlines = (
            ("reminder", add_business_days(asked_at, 2)),
            ("escalation", add_business_days(asked_at, 5)),
        )
        self._pending = _pending(invoice, key, why, asked_at, deadlines[0][1], deadlines[1][1])

        def decided() -> bool:
            return self._approved_by is not None or self._rejected_because is not None

        for step, deadline in deadlines:
            try:
                await workflow.wait_condition(
                    decided, timeout=max(deadline - workflow.now(), timedelta(seconds=1))
                )
                break
            except TimeoutError:
                if step == "reminder":
                    self._reminded = True
                    self._set_stage("approval_reminded", ExceptionOwner.FINANCE)
                    await self._audit("approval_reminder", input, {"total": str(invoice.total)})
                else:
                    self._escalated = True
                    await self._raise(
                        input,
                        ExceptionOwner.FINANCE,
                        f"invoice of {invoice.total} for project {input.project_id} ({input.period}) "
                        f"has waited 5 business days for approval ({why}): escalated to the finance lead",
                        key="approval-escalated",
                        record={"reference": invoice.reference, "total": str(invoice.total)},
                    )
                    self._set_stage("approval_escalated", ExceptionOwner.FINANCE)
        await workflow.wait_condition(decided)
        if self._rejected_because is not None:
            return self._rejected_because
        await self._audit(
            "invoice_approved",
            input,
            {
                "approver": self._approved_by,
                "total": str(invoice.total),
                "version": self._decided.invoice_version if self._decided else None,
                "why": why,
            },
        )
        return None

    async def _release(
        self, input: TimeToBillingInput, invoice: Invoice, key: str, rated: RatedWork, reason: str
    ) -> None:
        """Nothing was marked, so the entries are simply unbilled again; the reason goes where people look."""
        self._set_stage("rejected")
        released = {
            "time_entries": len(rated.time_entry_ids),
            "expenses": len(rated.expense_ids),
            "milestones": len(rated.milestone_ids),
        }
        await self._audit(
            "invoice_rejected",
            input,
            {
                "reason": reason,
                "rejected_by": self._decided.decided_by if self._decided else None,
                "version": self._decided.invoice_version if self._decided else None,
                "total": str(invoice.total),
                "reference": invoice.reference,
                "released": released,
            },
        )
        await self._raise(
            input,
            ExceptionOwner.PMO,
            f"finance rejected invoice {invoice.reference} ({invoice.total}): {reason}. Its entries are "
            "unbilled again; correct them and retry to bill them in a new run",
            key=f"invoice-rejected:{key[4:12]}",
            record={
                "project_id": input.project_id,
                "period": input.period,
                "psa": input.psa,
                "reference": invoice.reference,
                "reason": reason,
                "released": released,
                "time_entry_ids": list(rated.time_entry_ids[:200]),
            },
        )


def _pending(
    invoice: Invoice,
    key: str | None,
    why: str,
    asked_at: datetime,
    remind_at: datetime,
    escalate_at: datetime,
) -> PendingApproval:
    lines = tuple(
        PendingLine(
            kind=_kind(line),
            description=line.description,
            quantity=str(line.quantity),
            unit_amount=line.unit_price,
            amount=line.amount,
        )
        for line in invoice.lines
    )
    # The idempotency key names the entries billed; the lines and total what they came to. A decision naming
    # this version was taken on exactly this invoice.
    version = digest(
        key or invoice.reference,
        str(invoice.total),
        *(f"{line.description}|{line.quantity}|{line.unit_amount}|{line.amount}" for line in lines),
    )[:16]
    return PendingApproval(
        workflow_id=workflow.info().workflow_id,
        project_id=invoice.project_id,
        period=invoice.period,
        customer=invoice.customer_name or invoice.customer_id,
        legal_entity=invoice.legal_entity,
        version=version,
        total=invoice.total,
        lines=lines,
        reason=why,
        asked_at=asked_at,
        remind_at=remind_at,
        escalate_at=escalate_at,
    )


def _kind(line: InvoiceLine) -> str:
    # Invoice lines carry no kind; `domain.rating.invoice_lines` names each kind in its description.
    if line.description.startswith("Monthly retainer"):
        return "fee"
    if line.description.startswith("Milestone:"):
        return "milestone"
    if line.description.startswith("Re-billed expenses"):
        return "expense"
    return "time"
