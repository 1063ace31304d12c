"""The messages of a TimeToBilling run: its input, signals and updates, status and result.

Kept apart from the workflow so its logic reads on its own; every name is importable from
pssync.workflows.time_to_billing as well.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from pssync.canonical import LegalEntity, Money, PostedInvoice
from pssync.domain.rating import RatedWork

MARK_BILLED_CHUNK = 500
# Keep each run's history well below Temporal's limits; the cursor carries over to the next run.
HISTORY_EVENTS_BEFORE_CONTINUE = 5000


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


class WorkApproved(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_ids: tuple[str, ...] = ()


class BillNow(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(frozen=True)
    approver: str
    reason: str | None = None


class ApprovalRecorded(BaseModel):
    model_config = ConfigDict(frozen=True)
    decision: str
    stage: str


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
