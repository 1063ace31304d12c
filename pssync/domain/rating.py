"""Rating: approved work becomes invoice lines; work that cannot be rated becomes a rejected item.

Pure and deterministic, so the TimeToBilling workflow can apply it batch by batch and replay it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from pssync.canonical import Contract, ExceptionOwner, Expense, InvoiceLine, Money, RateCard, TimeEntry
from pssync.canonical.money import LineRounding


class RejectedItem(BaseModel):
    """A line that could not be billed, with the team that can fix it."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    kind: str
    owner: ExceptionOwner
    reason: str


class TimeBucket(BaseModel):
    """Hours at one role and rate: time entries aggregate into these before they become lines."""

    model_config = ConfigDict(frozen=True)

    role: str
    rate: Money
    hours: Decimal


class RatedWork(BaseModel):
    model_config = ConfigDict(frozen=True)

    buckets: tuple[TimeBucket, ...] = ()
    expense_totals: tuple[tuple[str, Money], ...] = ()
    time_entry_ids: tuple[str, ...] = ()
    expense_ids: tuple[str, ...] = ()
    rejected: tuple[RejectedItem, ...] = ()

    def merge(self, other: RatedWork) -> RatedWork:
        buckets: dict[tuple[str, Decimal], TimeBucket] = {(b.role, b.rate.amount): b for b in self.buckets}
        for bucket in other.buckets:
            key = (bucket.role, bucket.rate.amount)
            if key in buckets:
                existing = buckets[key]
                buckets[key] = existing.model_copy(update={"hours": existing.hours + bucket.hours})
            else:
                buckets[key] = bucket
        expenses: dict[str, Money] = dict(self.expense_totals)
        for category, amount in other.expense_totals:
            expenses[category] = expenses[category] + amount if category in expenses else amount
        return RatedWork(
            buckets=tuple(sorted(buckets.values(), key=lambda b: (b.role, b.rate.amount))),
            expense_totals=tuple(sorted(expenses.items())),
            time_entry_ids=self.time_entry_ids + other.time_entry_ids,
            expense_ids=self.expense_ids + other.expense_ids,
            rejected=self.rejected + other.rejected,
        )


def rate_time(entries: Iterable[TimeEntry], *, rate_card: RateCard, contract: Contract) -> RatedWork:
    buckets: dict[tuple[str, Decimal], Decimal] = {}
    rates: dict[tuple[str, Decimal], Money] = {}
    billed: list[str] = []
    rejected: list[RejectedItem] = []
    for entry in entries:
        if not (entry.approved and entry.billable) or entry.billed:
            continue
        if not entry.role:
            rejected.append(
                RejectedItem(
                    item_id=entry.id,
                    kind="time_entry",
                    owner=ExceptionOwner.HR_OPS,
                    reason=f"resource {entry.resource_id} has no role on the project",
                )
            )
            continue
        rate = rate_card.rate_for(entry.role, entry.date)
        if rate is None:
            rejected.append(
                RejectedItem(
                    item_id=entry.id,
                    kind="time_entry",
                    owner=ExceptionOwner.FINANCE,
                    reason=f"no rate for role {entry.role!r} on {entry.date.isoformat()} "
                    f"in rate card {rate_card.name!r}",
                )
            )
            continue
        if rate.currency != contract.currency:
            rejected.append(
                RejectedItem(
                    item_id=entry.id,
                    kind="time_entry",
                    owner=ExceptionOwner.FINANCE,
                    reason=f"rate card currency {rate.currency} differs from contract currency "
                    f"{contract.currency}",
                )
            )
            continue
        key = (entry.role, rate.amount)
        buckets[key] = buckets.get(key, Decimal(0)) + entry.hours
        rates[key] = rate
        billed.append(entry.id)
    return RatedWork(
        buckets=tuple(
            TimeBucket(role=role, rate=rates[(role, amount)], hours=hours)
            for (role, amount), hours in sorted(buckets.items())
        ),
        time_entry_ids=tuple(billed),
        rejected=tuple(rejected),
    )


def rate_expenses(expenses: Iterable[Expense], *, contract: Contract) -> RatedWork:
    totals: dict[str, Money] = {}
    billed: list[str] = []
    rejected: list[RejectedItem] = []
    for expense in expenses:
        if not (expense.approved and expense.billable) or expense.billed:
            continue
        if expense.amount.currency != contract.currency:
            rejected.append(
                RejectedItem(
                    item_id=expense.id,
                    kind="expense",
                    owner=ExceptionOwner.FINANCE,
                    reason=f"expense in {expense.amount.currency}, contract bills in {contract.currency}",
                )
            )
            continue
        category = expense.category or "Expenses"
        totals[category] = totals[category] + expense.amount if category in totals else expense.amount
        billed.append(expense.id)
    return RatedWork(
        expense_totals=tuple(sorted(totals.items())), expense_ids=tuple(billed), rejected=tuple(rejected)
    )


def invoice_lines(
    work: RatedWork, *, contract: Contract, rounding: LineRounding = "half_up"
) -> tuple[InvoiceLine, ...]:
    lines = [
        InvoiceLine(
            description=f"Professional services: {bucket.role}",
            quantity=bucket.hours,
            unit_price=bucket.rate,
            tax_code=contract.tax_code,
            rounding=rounding,
        )
        for bucket in work.buckets
    ]
    markup = Decimal(1) + contract.expense_markup
    for category, amount in work.expense_totals:
        description = f"Re-billed expenses: {category}"
        if contract.expense_markup:
            description += f" (incl. {contract.expense_markup * 100:.0f}% handling)"
        lines.append(
            InvoiceLine(
                description=description,
                quantity=Decimal(1),
                unit_price=amount.times(markup).rounded(rounding),
                tax_code=contract.tax_code,
                rounding=rounding,
            )
        )
    return tuple(lines)
