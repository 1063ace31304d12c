"""The messages of a TimeToBilling run: its input, signals and updates, status and result.

Kept apart from the workflow so its logic reads on its own; every name is importable from
workflows.time_to_billing as well.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from canonical import LegalEntity, Money, PostedInvoice
from domain.rating import RatedWork

MARK_BILLED_CHUNK = 500
# Keep each run's history well below Temporal's limits; the cursor carries over to the next run.
HISTORY_EVENTS_BEFORE_CONTINUE = 5000


WORKFLOW_TYPE = "TimeToBilling"


def workflow_id(project_id: str, period: str) -> str:
    return f"time-to-billing:{project_id}:{period}"


class Collection(BaseModel):
    """Where a run stood when it continued as new: collection cursors, rated work, and once the invoice
    is posted, how far marking billed has got."""

    model_config = ConfigDict(frozen=True)

    time_cursor: str | None = None
    time_done: bool = False
    expense_cursor: str | None = None
    expense_done: bool = False
    rated: RatedWork = RatedWork()
    # The periods read: the run's own first, then earlier invoiced ones whose late work it bills.
    periods: tuple[str, ...] = ()
    period_index: int = 0
    milestones_done: bool = False
    # Set once the ERP confirmed the invoice: a continued run only finishes marking billed.
    posted: PostedInvoice | None = None
    idempotency_key: str | None = None
    adjustment: bool = False
    marked_chunks: int = 0
    # What reached the run once it had begun collecting, kept across continue-as-new: still owed a follow-up.
    late: LateArrivals | None = None


class TimeToBillingInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    period: str
    psa: str
    entities: tuple[LegalEntity, ...]
    # Bill once no new approvals have arrived for this long after the period closed.
    settle_seconds: int = 300
    batch_size: int = 1000
    invoice_poll_interval_seconds: int = 3600
    carried: Collection | None = None
    history_events_before_continue: int = HISTORY_EVENTS_BEFORE_CONTINUE
    mark_billed_chunk: int = MARK_BILLED_CHUNK
    # Set when a run continued as new to bill what reached it too late for its own invoice.
    follow_up_of: LateArrivals | None = None


class WorkApproved(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_ids: tuple[str, ...] = ()
    # What the events approved, as `canonical.events.item_key`s; empty from senders that name none.
    item_ids: tuple[str, ...] = ()


class BillNow(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str
    # The completed milestone that prompted the request, for the audit; the run bills all work to date.
    milestone_id: str | None = None


class ApprovalDecision(BaseModel):
    """A person's decision on the invoice waiting in a run. `approver` is the authenticated caller (set by
    the ingress or CLI from the verified identity, never from a request body). The decision names what the
    person saw, the waiting invoice's version and total, so a decision on anything else is refused."""

    model_config = ConfigDict(frozen=True)
    approver: str
    reason: str | None = None
    # The waiting invoice's version (PendingApproval.version) and total as the approver saw them. Optional
    # only so that decisions recorded before they existed still replay; the ingress always sends both.
    invoice_version: str | None = None
    expected_total: Money | None = None


class ApprovalRecorded(BaseModel):
    model_config = ConfigDict(frozen=True)
    decision: str
    stage: str
    # Who decided and on which version: every caller learns which decision won.
    decided_by: str | None = None
    invoice_version: str | None = None


class PendingLine(BaseModel):
    """One line of a waiting invoice as finance reads it before deciding."""

    model_config = ConfigDict(frozen=True)
    kind: str  # time | expense | milestone | fee
    description: str
    quantity: str
    unit_amount: Money
    amount: Money


class PendingApproval(BaseModel):
    """The invoice a run waits on finance for: what a person needs to decide, and when they will be chased."""

    model_config = ConfigDict(frozen=True)
    workflow_id: str
    project_id: str
    period: str
    customer: str
    legal_entity: str
    version: str
    total: Money
    lines: tuple[PendingLine, ...]
    reason: str
    asked_at: datetime
    remind_at: datetime
    escalate_at: datetime


class RetryRequest(BaseModel):
    """Sent by the exceptions queue once a person fixed what made the ERP refuse the invoice."""

    model_config = ConfigDict(frozen=True)
    actor: str
    note: str | None = None


class TimeToBillingStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    project_id: str
    period: str
    approvals_seen: int
    entries_rated: int
    rejected_items: int
    total: Money | None = None
    approval_required: bool = False
    approval_reminded: bool = False
    approval_escalated: bool = False
    invoice_number: str | None = None
    approval_reason: str | None = None
    posting_problem: str | None = None
    adjustment: bool = False
    held_back_items: int = 0
    retainer_drawdown: Money | None = None


class TimeToBillingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: str  # posted | nothing_to_bill | rejected | deferred
    project_id: str
    period: str
    idempotency_key: str | None = None
    invoice: PostedInvoice | None = None
    time_entries_billed: int = 0
    expenses_billed: int = 0
    rejected_items: int = 0
    reason: str | None = None
    invoice_to_cash_workflow_id: str | None = None
    milestones_billed: int = 0
    adjustment: bool = False
    held_back_items: int = 0
    retainer_drawdown: Money | None = None
    deferred_to: str | None = None


class LateArrivals(BaseModel):
    """What reached a run after it began collecting, so its invoice may not hold it: approvals by feed event
    id (a repeat of one already seen is no new work), approvals that name no event, and a bill-now."""

    model_config = ConfigDict(frozen=True)
    event_ids: tuple[str, ...] = ()
    unnamed: int = 0
    bill_now: BillNow | None = None
    # The items those late events approved (`item_key`s), and how many late approvals named none.
    item_ids: tuple[str, ...] = ()
    naming_no_items: int = 0

    @property
    def owed(self) -> bool:
        return bool(self.event_ids or self.unnamed or self.bill_now)

    @property
    def all_named(self) -> bool:
        """Whether every late arrival was an approval naming its items (so what is owed can be looked up)."""
        return bool(self.item_ids) and not (self.unnamed or self.naming_no_items or self.bill_now)
