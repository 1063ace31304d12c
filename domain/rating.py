"""Rating: approved work becomes invoice lines; work that cannot be rated becomes a rejected item.

Pure and deterministic, so the TimeToBilling workflow applies it batch by batch (each call takes the work
rated so far and returns it with the batch added) and replays it. How a contract bills:

- time and materials: hours x the rate in force on the entry's date, one line per role and rate whose
  quantity is its hours rounded to what the booking ERP stores (domain.erp_rounding), so the ERP books the
  amount we compute; a not-to-exceed cap stops billing at the cap (counted as billed, after rounding, so the
  invoice never exceeds it), and what lies beyond it is held back (left unbilled) for finance to decide;
- fixed fee: completed milestones at the contract's billing schedule amounts (the fee is also its cap);
  time is not billed;
- retainer: the monthly fee; time draws the fee down at rate card value, and time beyond it is billed
  as overage at the rate card;
- expenses (every model): re-billed with the contract's markup and expense tax.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from canonical import BillingModel, ExceptionOwner, Expense, InvoiceLine, Milestone, Money, TimeEntry
from canonical.money import RoundingRule
from domain.account_mapping import AccountChoice, AccountMap, AccountProblem
from domain.billing_validation import (
    BillingContext,
    RatedTime,
    RejectedItem,
    booked_account,
    check_expense,
    check_time_entry,
    expense_category,
)
from domain.erp_rounding import rounding_rule

__all__ = [
    "Allowance",
    "MilestoneLine",
    "RatedWork",
    "RejectedItem",
    "RejectionCount",
    "TimeBucket",
    "account_booked_for",
    "expense_line_price",
    "invoice_lines",
    "rate_expenses",
    "rate_milestones",
    "rate_time",
    "retainer_account_problem",
]

# Held-back ids kept for the exception record; the count and value are always complete.
HELD_BACK_IDS_KEPT = 200
# Rejected lines kept with their reasons; counts per rule stay complete. Bounds what a run carries across
# continue-as-new when a whole period breaks one rule (20,000 entries in a currency the contract lacks).
REJECTED_KEPT = 500


class TimeBucket(BaseModel):
    """Hours at one role and rate: time entries aggregate into these before they become lines.

    `hours` stays exact (the sum of the entries); the line's quantity is rounded once, from the sum.
    """

    model_config = ConfigDict(frozen=True)

    role: str
    rate: Money
    hours: Decimal
    # Where the line books: the account its first entry was rated to (one role maps to one account).
    account_code: str | None = None


class MilestoneLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    milestone_id: str
    name: str
    amount: Money
    completed_on: date
    account_code: str | None = None


class Allowance(BaseModel):
    """How much this run may still bill (a not-to-exceed cap) or the fee covers (a retainer)."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["cap", "retainer"]
    limit: Money


class RejectionCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    owner: ExceptionOwner
    rule: str
    kind: str
    count: int


class RatedWork(BaseModel):
    """Everything rated so far in one billing run; carried across continue-as-new."""

    model_config = ConfigDict(frozen=True)

    buckets: tuple[TimeBucket, ...] = ()
    expense_totals: tuple[tuple[str, Money], ...] = ()
    # Category -> the account its re-billed line books to (absent when the entity maps no accounts).
    expense_accounts: tuple[tuple[str, str], ...] = ()
    milestones: tuple[MilestoneLine, ...] = ()
    # What is marked billed once the ERP confirms the invoice.
    time_entry_ids: tuple[str, ...] = ()
    expense_ids: tuple[str, ...] = ()
    rejected: tuple[RejectedItem, ...] = ()
    rejection_counts: tuple[RejectionCount, ...] = ()
    # Value counted against the allowance so far, and whether it ran out.
    counted: Decimal = Decimal(0)
    limit_reached: bool = False
    # Retainer: time the fee covers (marked billed on the retainer invoice, not priced on it).
    covered_hours: Decimal = Decimal(0)
    covered_value: Decimal = Decimal(0)
    # Cap: work beyond it, left unbilled.
    held_back_count: int = 0
    held_back_value: Decimal = Decimal(0)
    held_back_ids: tuple[str, ...] = ()

    @property
    def milestone_ids(self) -> tuple[str, ...]:
        return tuple(m.milestone_id for m in self.milestones)

    @property
    def rejected_count(self) -> int:
        return sum(c.count for c in self.rejection_counts)

    def with_rejections(self, items: list[RejectedItem]) -> RatedWork:
        if not items:
            return self
        counts = {(c.owner, c.rule, c.kind): c.count for c in self.rejection_counts}
        for item in items:
            key = (item.owner, item.rule, item.kind)
            counts[key] = counts.get(key, 0) + 1
        kept = (*self.rejected, *items[: max(0, REJECTED_KEPT - len(self.rejected))])
        return self.model_copy(
            update={
                "rejected": kept,
                "rejection_counts": tuple(
                    RejectionCount(owner=owner, rule=rule, kind=kind, count=count)
                    for (owner, rule, kind), count in sorted(counts.items())
                ),
            }
        )

    @property
    def entry_count(self) -> int:
        return len(self.time_entry_ids) + len(self.expense_ids) + len(self.milestones)

    def _hold_back(self, item_id: str, value: Decimal) -> RatedWork:
        kept = self.held_back_ids
        if len(kept) < HELD_BACK_IDS_KEPT:
            kept = (*kept, item_id)
        return self.model_copy(
            update={
                "held_back_count": self.held_back_count + 1,
                "held_back_value": self.held_back_value + value,
                "held_back_ids": kept,
                "limit_reached": True,
            }
        )


def _fits(work: RatedWork, allowance: Allowance, value: Decimal) -> bool:
    # Once the allowance runs out it stays out: billing stops at the cap, it does not pick smaller items.
    return not work.limit_reached and work.counted + value <= allowance.limit.amount


def _billed_increase(
    buckets: dict[tuple[str, Decimal], TimeBucket], rated: RatedTime, rule: RoundingRule
) -> Decimal:
    """How much adding the entry raises the invoice: its line's amount with the entry, less without it.

    Lines round, so this is not hours x rate: 25 minutes can add 0.4167 h or, with the line's earlier
    minutes, tip the rounded quantity either way.
    """
    existing = buckets.get((rated.role, rated.rate.amount))
    before = existing.hours if existing else Decimal(0)
    after = before + rated.entry.hours
    return rule.line_amount(after, rated.rate).amount - rule.line_amount(before, rated.rate).amount


def expense_line_price(amount: Money, markup: Decimal, rule: RoundingRule) -> Money:
    """One category's re-billed expenses as the unit price of a one-unit line: rounded to the minor unit."""
    return rule.unit_price(amount.times(Decimal(1) + markup).rounded(rule.line_rounding))


def _add_bucket(buckets: dict[tuple[str, Decimal], TimeBucket], rated: RatedTime) -> None:
    key = (rated.role, rated.rate.amount)
    existing = buckets.get(key)
    hours = rated.entry.hours + (existing.hours if existing else Decimal(0))
    account = existing.account_code if existing else rated.account_code
    buckets[key] = TimeBucket(role=rated.role, rate=rated.rate, hours=hours, account_code=account)


def _sorted_buckets(buckets: dict[tuple[str, Decimal], TimeBucket]) -> tuple[TimeBucket, ...]:
    return tuple(sorted(buckets.values(), key=lambda b: (b.role, b.rate.amount)))


def _billable(entry: TimeEntry | Expense) -> bool:
    return entry.approved and entry.billable and not entry.billed


def rate_time(
    work: RatedWork,
    entries: Iterable[TimeEntry],
    *,
    context: BillingContext,
    allowance: Allowance | None = None,
) -> RatedWork:
    """`work` with a batch of time entries added, in the order given (the PSA's creation order)."""
    if context.contract.billing_model == BillingModel.FIXED_FEE:
        # A fixed fee bills milestones; time is tracked against the budget in the PSA, never invoiced.
        return work
    rule = rounding_rule(context.entity)
    buckets = {(b.role, b.rate.amount): b for b in work.buckets}
    billed = list(work.time_entry_ids)
    rejected: list[RejectedItem] = []
    for entry in entries:
        if not _billable(entry):
            continue
        checked = check_time_entry(entry, context)
        if isinstance(checked, RejectedItem):
            rejected.append(checked)
            continue
        value = checked.value.amount
        if allowance is not None and allowance.kind == "retainer":
            if _fits(work, allowance, value):
                work = work.model_copy(
                    update={
                        "counted": work.counted + value,
                        "covered_hours": work.covered_hours + entry.hours,
                        "covered_value": work.covered_value + value,
                    }
                )
            else:
                # Beyond the fee: billed as overage at the rate card.
                work = work.model_copy(update={"limit_reached": True})
                _add_bucket(buckets, checked)
            billed.append(entry.id)
            continue
        if allowance is not None:
            increase = _billed_increase(buckets, checked, rule)
            if not _fits(work, allowance, increase):
                work = work._hold_back(entry.id, value)
                continue
            work = work.model_copy(update={"counted": work.counted + increase})
        _add_bucket(buckets, checked)
        billed.append(entry.id)
    return work.with_rejections(rejected).model_copy(
        update={"buckets": _sorted_buckets(buckets), "time_entry_ids": tuple(billed)}
    )


def rate_expenses(
    work: RatedWork,
    expenses: Iterable[Expense],
    *,
    context: BillingContext,
    allowance: Allowance | None = None,
) -> RatedWork:
    """`work` with a batch of expenses added; a cap counts them with their markup, as invoiced."""
    rule = rounding_rule(context.entity)
    totals: dict[str, Money] = dict(work.expense_totals)
    accounts: dict[str, str] = dict(work.expense_accounts)
    billed = list(work.expense_ids)
    rejected: list[RejectedItem] = []
    markup = context.contract.expense_markup
    for expense in expenses:
        if not _billable(expense):
            continue
        checked = check_expense(expense, context)
        if isinstance(checked, RejectedItem):
            rejected.append(checked)
            continue
        category = expense_category(expense)
        if allowance is not None and allowance.kind == "cap":
            before = totals.get(category)
            after = before + expense.amount if before is not None else expense.amount
            increase = expense_line_price(after, markup, rule).amount - (
                expense_line_price(before, markup, rule).amount if before is not None else Decimal(0)
            )
            if not _fits(work, allowance, increase):
                work = work._hold_back(expense.id, expense.amount.amount * (Decimal(1) + markup))
                continue
            work = work.model_copy(update={"counted": work.counted + increase})
        totals[category] = totals[category] + expense.amount if category in totals else expense.amount
        account = booked_account(context, lambda mapping: mapping.for_expense(category))  # noqa: B023
        if isinstance(account, str):
            accounts.setdefault(category, account)
        billed.append(expense.id)
    return work.with_rejections(rejected).model_copy(
        update={
            "expense_totals": tuple(sorted(totals.items())),
            "expense_accounts": tuple(sorted(accounts.items())),
            "expense_ids": tuple(billed),
        }
    )


def rate_milestones(
    work: RatedWork,
    milestones: Iterable[Milestone],
    *,
    context: BillingContext,
    period_end: date,
    allowance: Allowance | None = None,
) -> RatedWork:
    """Fixed fee: each unbilled milestone completed by the period's end bills its scheduled amount (its
    budget in the PSA when the schedule does not name it); a cap holds back what would exceed it. The
    schedule is the one of the contract version in force on the day the milestone was completed."""
    if context.contract.billing_model != BillingModel.FIXED_FEE:
        return work
    rule = rounding_rule(context.entity)
    lines = list(work.milestones)
    rejected: list[RejectedItem] = []
    seen = set(work.milestone_ids)
    for milestone in milestones:
        if milestone.completed_on is None or milestone.completed_on > period_end or milestone.id in seen:
            continue
        schedule = {c.milestone: c.amount for c in context.billing_schedule_on(milestone.completed_on)}
        amount = schedule.get(milestone.name) or milestone.amount
        if amount is None:
            rejected.append(
                RejectedItem(
                    item_id=milestone.id,
                    kind="milestone",
                    owner=ExceptionOwner.PMO,
                    rule="unscheduled_milestone",
                    reason=f"milestone {milestone.name!r} was completed but the contract's billing schedule "
                    f"has no amount for it (scheduled: {', '.join(sorted(schedule)) or 'none'})",
                )
            )
            continue
        if amount.currency != context.contract.currency:
            rejected.append(
                RejectedItem(
                    item_id=milestone.id,
                    kind="milestone",
                    owner=ExceptionOwner.FINANCE,
                    rule="currency_mismatch",
                    reason=f"milestone {milestone.name!r} is scheduled in {amount.currency}, the contract "
                    f"bills in {context.contract.currency}",
                )
            )
            continue
        account = booked_account(context, lambda mapping: mapping.for_milestone(context.service_code))
        if isinstance(account, AccountProblem):
            rejected.append(
                RejectedItem(
                    item_id=milestone.id,
                    kind="milestone",
                    owner=ExceptionOwner.FINANCE,
                    rule=account.rule,
                    reason=f"milestone {milestone.name!r}: {account.reason}",
                )
            )
            continue
        if allowance is not None and allowance.kind == "cap":
            increase = rule.line_amount(Decimal(1), amount).amount
            if not _fits(work, allowance, increase):
                work = work._hold_back(milestone.id, amount.amount)
                continue
            work = work.model_copy(update={"counted": work.counted + increase})
        seen.add(milestone.id)
        lines.append(
            MilestoneLine(
                milestone_id=milestone.id,
                name=milestone.name,
                amount=amount,
                completed_on=milestone.completed_on,
                account_code=account,
            )
        )
    return work.with_rejections(rejected).model_copy(update={"milestones": tuple(lines)})


def invoice_lines(
    work: RatedWork, *, context: BillingContext, period: str, retainer_fee: Money | None = None
) -> tuple[InvoiceLine, ...]:
    """The invoice's lines: retainer fee, milestones, time by role and rate, expenses by category.

    Quantities and unit prices are what the entity's ERP stores (domain.erp_rounding), so each line's
    amount, and the total, are what that ERP books.
    """
    contract, rule = context.contract, rounding_rule(context.entity)
    rounding = rule.line_rounding
    lines: list[InvoiceLine] = []
    if retainer_fee is not None:
        fee_account = booked_account(context, lambda mapping: mapping.for_retainer(context.service_code))
        if isinstance(fee_account, AccountProblem):
            # The run checks the fee's account before it rates (retainer_account_problem): not reached.
            raise ValueError(fee_account.reason)
        lines.append(
            InvoiceLine(
                description=f"Monthly retainer {period}",
                quantity=Decimal(1),
                unit_price=rule.unit_price(retainer_fee),
                tax_code=contract.tax_code,
                account_code=fee_account,
                rounding=rounding,
                dimensions=context.dimensions,
            )
        )
    lines.extend(
        InvoiceLine(
            description=f"Milestone: {milestone.name} (completed {milestone.completed_on.isoformat()})",
            quantity=Decimal(1),
            unit_price=rule.unit_price(milestone.amount),
            tax_code=contract.tax_code,
            account_code=milestone.account_code,
            source_ids=(milestone.milestone_id,),
            rounding=rounding,
            dimensions=context.dimensions,
        )
        for milestone in work.milestones
    )
    label = "Retainer overage" if contract.billing_model == BillingModel.RETAINER else "Professional services"
    lines.extend(
        InvoiceLine(
            description=f"{label}: {bucket.role}",
            quantity=rule.quantity(bucket.hours),
            unit_price=rule.unit_price(bucket.rate),
            tax_code=contract.tax_code,
            account_code=bucket.account_code,
            rounding=rounding,
            dimensions=context.dimensions,
        )
        for bucket in work.buckets
    )
    expense_accounts = dict(work.expense_accounts)
    for category, amount in work.expense_totals:
        description = f"Re-billed expenses: {category}"
        if contract.expense_markup:
            description += f" (incl. {contract.expense_markup * 100:.0f}% handling)"
        lines.append(
            InvoiceLine(
                description=description,
                quantity=Decimal(1),
                unit_price=expense_line_price(amount, contract.expense_markup, rule),
                tax_code=context.expense_tax_code,
                account_code=expense_accounts.get(category),
                rounding=rounding,
                dimensions=context.dimensions,
            )
        )
    return tuple(lines)


def retainer_account_problem(context: BillingContext) -> AccountProblem | None:
    """Why the retainer fee cannot be booked (its account unmapped, unknown or archived), or None.

    The fee is the invoice: without its account nothing of the month is billed until finance maps it.
    """
    if context.contract.billing_model != BillingModel.RETAINER:
        return None
    account = booked_account(context, lambda mapping: mapping.for_retainer(context.service_code))
    return account if isinstance(account, AccountProblem) else None


def account_booked_for(
    description: str, accounts: AccountMap, service_code: str | None
) -> AccountChoice | AccountProblem | None:
    """The account the mapping books a line of ours to, read back from the line's description (as
    `invoice_lines` writes it); None for a description rating never writes."""
    for label in ("Professional services: ", "Retainer overage: "):
        if description.startswith(label):
            return accounts.for_time(description[len(label) :], service_code)
    if description.startswith("Re-billed expenses: "):
        category = description[len("Re-billed expenses: ") :]
        return accounts.for_expense(category.split(" (incl. ", 1)[0])
    if description.startswith("Milestone: "):
        return accounts.for_milestone(service_code)
    if description.startswith("Monthly retainer "):
        return accounts.for_retainer(service_code)
    return None
