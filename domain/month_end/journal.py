"""Month-end journals as proposed: lines by account role, signed (debit positive, credit negative).

Lines name an account ROLE, not a code: mapping a role to an entity's account happens when the journal is
posted, the way account_mapping maps invoice lines. A journal is balanced and every amount is already at the
currency's minor unit, or it cannot be built.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, model_validator

from canonical import ExceptionOwner, Money
from canonical.money import minor_units
from domain.month_end.sources import SourceRefs


class AccountRole(StrEnum):
    # Income: invoices of every kind book here (account_mapping's role, service, milestone, retainer rules).
    REVENUE = "revenue"
    # Liability: invoiced ahead of recognition.
    DEFERRED_REVENUE = "deferred_revenue"
    # Asset: recognised ahead of invoicing under a fixed fee or retainer (unbilled receivables).
    ACCRUED_REVENUE = "accrued_revenue"
    # Asset: approved, unbilled time-and-materials work at bill rates.
    WIP = "wip"
    # Expense: what the project's time cost the firm.
    LABOUR_COST = "labour_cost"
    # Where payroll's cost is absorbed from as it is charged to projects.
    COST_CLEARING = "cost_clearing"


class JournalKind(StrEnum):
    RECOGNITION = "recognition"
    WIP_ACCRUAL = "wip_accrual"
    WIP_REVERSAL = "wip_reversal"
    LABOUR_COST = "labour_cost"


class JournalLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: AccountRole
    # The project dimension the line is reported under.
    project_id: str
    # Debit positive, credit negative.
    amount: Money
    description: str
    sources: SourceRefs


class Journal(BaseModel):
    """One proposed journal: one kind, one project, one entity and period. No lines: nothing to post."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    project_id: str
    period: str
    kind: JournalKind
    date: date
    currency: str
    lines: tuple[JournalLine, ...] = ()
    # A difference against what an earlier run of the same entity, period and kind posted.
    adjustment: bool = False

    @model_validator(mode="after")
    def _balanced_at_minor_units(self) -> Journal:
        quantum = Decimal(1).scaleb(-minor_units(self.currency))
        for index, line in enumerate(self.lines):
            amount = line.amount
            if amount.currency != self.currency:
                raise ValueError(f"lines[{index}] is in {amount.currency}, the journal in {self.currency}")
            if amount.amount != amount.amount.quantize(quantum):
                raise ValueError(f"lines[{index}] amount {amount} is not at {self.currency}'s minor unit")
            if amount.is_zero():
                raise ValueError(f"lines[{index}] is zero: a journal carries only lines that move money")
        imbalance = sum((line.amount.amount for line in self.lines), Decimal(0))
        if imbalance != 0:
            raise ValueError(f"journal {self.kind} for {self.project_id} {self.period} is out by {imbalance}")
        return self

    @property
    def is_empty(self) -> bool:
        return not self.lines

    def total(self, role: AccountRole) -> Money:
        """The signed sum of the journal's lines on `role`."""
        amount = sum((line.amount.amount for line in self.lines if line.role == role), Decimal(0))
        return Money(amount=amount, currency=self.currency)


def moving(lines: Iterable[JournalLine]) -> tuple[JournalLine, ...]:
    """The lines that move money: a zero line is left out rather than posted."""
    return tuple(line for line in lines if not line.amount.is_zero())


class Finding(BaseModel):
    """Something month-end could not value, for the exceptions queue: the rule, who fixes it, and why."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    rule: str
    owner: ExceptionOwner
    reason: str
    sources: SourceRefs
