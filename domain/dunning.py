"""Dunning: reminders to the account owner while an invoice stays unpaid after its due date.

Semantics (decided here, used by InvoiceToCash):
- Three stages, counted in calendar days after the due date: 1 at +7, 2 at +14, 3 at +30. A stage starts
  at 00:00 UTC on that day.
- Only an open invoice is dunned: awaiting payment with something still due. Paid, credited, voided or
  written-off invoices are never dunned, and a payment seen at any check stops the reminders at once.
- Each stage is acted on once: one CRM task for the account owner, whose external key is the invoice and
  the stage, so a retried or replayed create finds the same task.
- A run that wakes up late (started after the invoice was long overdue, or after downtime) acts on the
  most advanced stage reached only; the stages it jumped over are recorded as skipped, not sent.
- The due date is read from the ERP at every check, so moving it (a payment plan) moves the stages.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict

from canonical import CrmTask, InvoiceState, ReceivablesSummary


class DunningStage(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: int
    days_overdue: int
    # Printed in the task, so the owner knows how firm to be.
    tone: str


STAGES: tuple[DunningStage, ...] = (
    DunningStage(number=1, days_overdue=7, tone="friendly reminder"),
    DunningStage(number=2, days_overdue=14, tone="second reminder: call the customer"),
    DunningStage(number=3, days_overdue=30, tone="final reminder: finance takes over collection"),
)
FINAL_STAGE = STAGES[-1].number


def is_dunnable(summary: ReceivablesSummary) -> bool:
    return (
        summary.state == InvoiceState.AWAITING_PAYMENT
        and summary.due_date is not None
        and summary.amount_due.amount > 0
    )


def starts_at(due_date: date, stage: DunningStage) -> datetime:
    return datetime.combine(due_date + timedelta(days=stage.days_overdue), time(0), tzinfo=UTC)


def reached(summary: ReceivablesSummary, now: datetime, *, done: int) -> DunningStage | None:
    """The most advanced stage reached by `now` and not yet acted on (after stage `done`), if any."""
    if not is_dunnable(summary) or summary.due_date is None:
        return None
    due = [s for s in STAGES if s.number > done and starts_at(summary.due_date, s) <= now]
    return due[-1] if due else None


def next_start(summary: ReceivablesSummary, *, done: int) -> datetime | None:
    """When the next stage after `done` starts, for an invoice that is still open."""
    if not is_dunnable(summary) or summary.due_date is None:
        return None
    for stage in STAGES:
        if stage.number > done:
            return starts_at(summary.due_date, stage)
    return None


def task_key(erp: str, invoice_id: str, stage: DunningStage) -> str:
    return f"dunning:{erp}:{invoice_id}:stage-{stage.number}"


def dunning_task(
    stage: DunningStage,
    summary: ReceivablesSummary,
    *,
    erp: str,
    account_id: str,
    owner_id: str | None,
    today: date,
) -> CrmTask:
    assert summary.due_date is not None  # only open invoices with a due date are dunned
    overdue_days = (today - summary.due_date).days
    return CrmTask(
        external_key=task_key(erp, summary.invoice_id, stage),
        related_to_id=account_id,
        owner_id=owner_id,
        subject=(
            f"Overdue invoice {summary.invoice_number}: {summary.amount_due} unpaid "
            f"(reminder {stage.number} of {FINAL_STAGE})"
        ),
        description=(
            f"Invoice {summary.invoice_number} for {summary.total} was due on "
            f"{summary.due_date.isoformat()} and is {overdue_days} days overdue; {summary.amount_due} is "
            f"still unpaid ({summary.amount_paid} paid, {summary.amount_credited} credited). "
            f"This is the {stage.tone}."
        ),
        due_date=today,
    )
