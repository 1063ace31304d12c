"""Payable items as reconciliation counts them: whatever the PSA says the firm owes a supplier for (an
expense, a subcontractor's time entry), tallied per bill number it is marked on and per currency, and those on
no bill yet. Only counts, sums and a sample of ids are kept: the tally travels through workflow history, so a
period's thousands of items become a handful of totals per bill.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from canonical import ExactDecimal, Money
from canonical.payables import PayableExpense, SubcontractedTime
from domain.account_mapping import ANY
from domain.reconcile import SAMPLE_IDS


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class PayableItem(_Frozen):
    """One thing the firm owes a supplier for, as the PSA holds it: an expense, or a subcontractor's time."""

    # As a bill line's `source_ids` names it: an expense's id, `time:{id}` for a time entry.
    id: str
    project_id: str
    bill_number: str | None
    amount: Money
    # The PSA says the bill holding it is paid (an expense reimbursed, time paid).
    settled: bool = False
    # Which mapping rule gives its line's cost account: (kind, key), e.g. ("expense_category", "Travel").
    cost_rule: tuple[str, str] | None = None
    # For time: the cost rate per hour, what one step of the ERP's quantity rounding can be worth.
    rate: ExactDecimal = Decimal(0)


def expense_item(expense: PayableExpense) -> PayableItem:
    return PayableItem(
        id=expense.id,
        project_id=expense.project_id,
        bill_number=expense.bill_number,
        amount=expense.amount,
        settled=expense.reimbursed,
        cost_rule=("expense_category", expense.category or ANY),
    )


def time_item(entry: SubcontractedTime) -> PayableItem:
    """A subcontractor's time entry at its exact hours times its cost rate (nothing without a rate, which
    the Payables run leaves off bills as a finance exception); its line's amount is rounded as the ERP
    rounds, which the comparison allows for."""
    rate = entry.cost_rate
    exact = Decimal(entry.minutes) / Decimal(60) * rate.amount if rate is not None else Decimal(0)
    return PayableItem(
        id=f"time:{entry.id}",
        project_id=entry.project_id,
        bill_number=entry.bill_number,
        amount=Money(amount=exact, currency=entry.currency),
        settled=entry.paid,
        cost_rule=("role", entry.role or ANY),
        rate=Decimal(0) if rate is None else rate.amount,
    )


class ItemTally(_Frozen):
    count: int = 0
    amount: ExactDecimal = Decimal(0)
    settled: int = 0
    top_rate: ExactDecimal = Decimal(0)
    sample_ids: tuple[str, ...] = ()


class BillItems(_Frozen):
    """The PSA items marked on one bill number, in one currency."""

    bill_number: str
    currency: str
    items: ItemTally


class UnbilledItems(_Frozen):
    currency: str
    items: ItemTally


class PayablesTally(_Frozen):
    billed: tuple[BillItems, ...] = ()
    unbilled: tuple[UnbilledItems, ...] = ()


def plus(left: ItemTally, right: ItemTally) -> ItemTally:
    return ItemTally(
        count=left.count + right.count,
        amount=left.amount + right.amount,
        settled=left.settled + right.settled,
        top_rate=max(left.top_rate, right.top_rate),
        sample_ids=(left.sample_ids + right.sample_ids)[:SAMPLE_IDS],
    )


def _one(item: PayableItem) -> ItemTally:
    return ItemTally(
        count=1,
        amount=item.amount.amount,
        settled=int(item.settled),
        top_rate=item.rate,
        sample_ids=(item.id,),
    )


def tally_payables(items: Iterable[PayableItem]) -> PayablesTally:
    """Group payable items by the bill number (and currency) they are on; those on no bill by currency."""
    billed: list[BillItems] = []
    unbilled: list[UnbilledItems] = []
    for item in items:
        currency = item.amount.currency
        if item.bill_number is None:
            unbilled.append(UnbilledItems(currency=currency, items=_one(item)))
        else:
            billed.append(BillItems(bill_number=item.bill_number, currency=currency, items=_one(item)))
    return merge_payables([PayablesTally(billed=tuple(billed), unbilled=tuple(unbilled))])


def merge_payables(parts: Iterable[PayablesTally]) -> PayablesTally:
    """Tallies made page by page, added up."""
    billed: dict[tuple[str, str], ItemTally] = {}
    unbilled: dict[str, ItemTally] = {}
    for part in parts:
        for group in part.billed:
            key = (group.bill_number, group.currency)
            billed[key] = plus(billed.get(key, ItemTally()), group.items)
        for rest in part.unbilled:
            unbilled[rest.currency] = plus(unbilled.get(rest.currency, ItemTally()), rest.items)
    return PayablesTally(
        billed=tuple(
            BillItems(bill_number=number, currency=currency, items=tally)
            for (number, currency), tally in sorted(billed.items())
        ),
        unbilled=tuple(UnbilledItems(currency=c, items=t) for c, t in sorted(unbilled.items())),
    )
