"""Canonical business events: what happened, in vendor-neutral terms."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from canonical.money import Money

ItemKind = Literal["time", "expense", "milestone"]


def item_key(kind: ItemKind, item_id: str) -> str:
    """One billable item across kinds: a PSA numbers its time entries, expenses and milestones apart."""
    return f"{kind}:{item_id}"


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str
    occurred_at: datetime


class CustomerCreated(_Event):
    account_id: str
    erp: str
    erp_customer_id: str


class ProjectActivated(_Event):
    project_id: str
    external_ref: str


class TimeApproved(_Event):
    kind: Literal["time_approved"] = "time_approved"
    event_id: str
    time_entry_id: str
    project_id: str
    entry_date: date


class ExpensePosted(_Event):
    kind: Literal["expense_posted"] = "expense_posted"
    event_id: str
    expense_id: str
    project_id: str
    entry_date: date


class MilestoneCompleted(_Event):
    kind: Literal["milestone_completed"] = "milestone_completed"
    event_id: str
    milestone_id: str
    project_id: str
    completed_on: date


class InvoiceIssued(_Event):
    erp: str
    invoice_id: str
    invoice_number: str
    project_id: str
    total: Money


class PaymentReceived(_Event):
    erp: str
    payment_id: str
    invoice_id: str
    amount: Money


PsaEvent = Annotated[TimeApproved | ExpensePosted | MilestoneCompleted, Field(discriminator="kind")]
