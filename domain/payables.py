"""Payables rules: who an expense is owed to, which cost account its bill line books to, and the bill's
reference and idempotency key. Pure and deterministic, so the Payables workflow calls it and replays it.

- A vendor named on the expense is owed the money (the firm pays the vendor); otherwise a reimbursable
  expense is owed to the person who paid it. Each supplier has a stable key of ours, which the ERP's
  supplier record carries.
- A line books to the `cost_account_code` of the entity's `expense_category` rule for its category, else of
  the `expense_category *` rule. No such cost account, or one the synced chart lacks or holds archived, is a
  finance exception for that expense; the supplier's other expenses are billed.
- A subcontractor's approved time is owed to the subcontracting firm the PSA names on the person, under the
  same supplier key as that firm's expenses, so both land on one bill. Time bills at the cost rate the PSA
  held when it was logged: one line per person, project and cost rate, the quantity its hours as the ERP
  stores them and the amount quantity x rate rounded once as the ERP rounds (canonical.money.RoundingRule,
  as customer invoices are rated). Its cost account is the `role` rule's cost account for the entry's role,
  else the `role *` rule's; time without a cost rate is a finance exception for that entry.
- The bill's reference and key come from the business event: PSA, supplier, period, entity and the sorted
  ids of the expenses and time entries on it. The same work always makes the same bill, however often the
  run is retried or restarted.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from canonical.dimensions import DimensionValue
from canonical.money import Money, RoundingRule, line_amount
from canonical.payables import BillLine, PayableExpense, SubcontractedTime, Supplier
from domain.account_mapping import ANY, NOT_IN_ERP, SET_COMMAND, UNMAPPED, AccountMap, AccountProblem
from domain.idempotency import digest

# Our supplier key must fit the ERPs' supplier reference (Xero's ContactNumber holds 50 characters).
SUPPLIER_KEY_LENGTH = 50
# Reimbursements are paid on the firm's usual supplier terms.
BILL_TERMS_DAYS = 14


def vendor_supplier(vendor: str) -> Supplier:
    """A firm the PSA names (on an expense, or as a subcontractor's employer), keyed by its name's slug."""
    name = " ".join(vendor.split())
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    key = f"vendor:{slug}"
    if len(key) > SUPPLIER_KEY_LENGTH:
        key = f"vendor:{slug[:30]}-{digest(name.lower())[:12]}"
    return Supplier(key=key, name=name)


def supplier_for(psa: str, expense: PayableExpense) -> Supplier:
    if expense.vendor:
        return vendor_supplier(expense.vendor)
    return Supplier(
        key=f"person:{psa}:{expense.person_id}"[:SUPPLIER_KEY_LENGTH],
        name=expense.person_name,
        email=expense.person_email,
    )


class CostAccount(BaseModel):
    model_config = ConfigDict(frozen=True)
    account_code: str


def cost_account(
    accounts: AccountMap | None, category: str | None, *, legal_entity: str
) -> CostAccount | AccountProblem:
    key = category or ANY
    fix = f"`{SET_COMMAND} {legal_entity} expense_category {_shell(key)} --account CODE --cost-account CODE`"
    rules = accounts.rules if accounts is not None else ()
    rule = next((r for r in rules if r.kind == "expense_category" and r.key == key), None) or next(
        (r for r in rules if r.kind == "expense_category" and r.key == ANY), None
    )
    if rule is None or rule.cost_account_code is None:
        return AccountProblem(
            rule=UNMAPPED,
            reason=f"no cost account is mapped for expenses of category {key!r} in legal entity "
            f"{legal_entity}, so they cannot be billed; finance maps one with {fix}",
        )
    code = rule.cost_account_code
    chart = accounts.chart if accounts is not None else None
    if chart is not None and not chart.get(code, False):
        state = "is archived" if code in chart else "does not exist"
        return AccountProblem(
            rule=NOT_IN_ERP,
            reason=f"cost account {code!r} mapped by rule {rule.label(legal_entity)} {state} in the ERP's "
            f"chart of accounts (as of the last reference sync); finance restores it or remaps with {fix}",
        )
    return CostAccount(account_code=code)


def time_cost_account(
    accounts: AccountMap | None, role: str | None, *, legal_entity: str
) -> CostAccount | AccountProblem:
    """The cost account subcontracted time in `role` books to: the role's rule, else the `role *` rule."""
    key = role or ANY
    fix = f"`{SET_COMMAND} {legal_entity} role {_shell(key)} --account CODE --cost-account CODE`"
    rules = accounts.rules if accounts is not None else ()
    rule = next(
        (r for r in rules if r.kind == "role" and r.key == key and r.cost_account_code), None
    ) or next((r for r in rules if r.kind == "role" and r.key == ANY and r.cost_account_code), None)
    if rule is None or rule.cost_account_code is None:
        return AccountProblem(
            rule=UNMAPPED,
            reason=f"no cost account is mapped for subcontracted time in role {key!r} in legal entity "
            f"{legal_entity}, so it cannot be billed; finance maps one with {fix}",
        )
    code = rule.cost_account_code
    chart = accounts.chart if accounts is not None else None
    if chart is not None and not chart.get(code, False):
        state = "is archived" if code in chart else "does not exist"
        return AccountProblem(
            rule=NOT_IN_ERP,
            reason=f"cost account {code!r} mapped by rule {rule.label(legal_entity)} {state} in the ERP's "
            f"chart of accounts (as of the last reference sync); finance restores it or remaps with {fix}",
        )
    return CostAccount(account_code=code)


def missing_cost_rate(entry: SubcontractedTime) -> str:
    return (
        f"time entry {entry.id} ({entry.minutes} min on {entry.date.isoformat()}, project "
        f"{entry.project_id}) is not billed: {entry.person_name} has no cost rate in {entry.currency} in the "
        f"PSA; finance sets the member's {entry.currency} cost rate in Kantata (the member's Cost Rates). "
        "Kantata applies a cost rate to time logged from then on, so the entry is then logged again (its "
        "timesheet reopened) and approved; the next scan bills it"
    )


def bill_line(
    expense: PayableExpense, account_code: str, dimensions: tuple[DimensionValue, ...] = ()
) -> BillLine:
    what = expense.category or "Expense"
    detail = f" - {expense.notes}" if expense.notes else ""
    receipt = f" (receipt: {expense.receipt_ref})" if expense.receipt_ref else ""
    return BillLine(
        description=f"{expense.date.isoformat()} {what}{detail}{receipt}",
        amount=expense.amount,
        account_code=account_code,
        expense_id=expense.id,
        dimensions=dimensions,
    )


class CostedTime(BaseModel):
    """A subcontracted time entry ready to bill: its cost rate, cost account and project dimensions."""

    model_config = ConfigDict(frozen=True)
    entry: SubcontractedTime
    cost_rate: Money
    account_code: str
    dimensions: tuple[DimensionValue, ...] = ()


def hours(minutes: int) -> Decimal:
    return Decimal(minutes) / Decimal(60)


def time_bill_lines(costed: list[CostedTime], rule: RoundingRule) -> list[BillLine]:
    """One line per person, project and cost rate, in the order of person, project and rate.

    The quantity is the line's exact hours rounded once to what the ERP stores, the unit price the cost rate
    as the ERP stores it, and the amount their product rounded once as the ERP rounds a line; so the ERP
    books this amount and the bill's total is the ERP's total.
    """
    groups: dict[tuple[str, str, str, Decimal, str], list[CostedTime]] = {}
    for item in costed:
        rate = rule.unit_price(item.cost_rate)
        key = (item.entry.person_id, item.entry.project_id, rate.currency, rate.amount, item.account_code)
        groups.setdefault(key, []).append(item)
    lines: list[BillLine] = []
    for (_, project_id, currency, rate_amount, account_code), items in sorted(
        groups.items(), key=lambda pair: (pair[0][0], pair[0][1], pair[0][2], pair[0][3], pair[0][4])
    ):
        rate = Money(amount=rate_amount, currency=currency)
        quantity = rule.quantity(hours(sum(item.entry.minutes for item in items)))
        first = min(item.entry.date for item in items)
        last = max(item.entry.date for item in items)
        span = first.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
        person = items[0].entry.person_name
        lines.append(
            BillLine(
                description=f"Subcontracted time: {person}, project {project_id}, {span} "
                f"({quantity} h at {rate.amount} {currency}/h)",
                amount=line_amount(quantity, rate, rule.line_rounding),
                account_code=account_code,
                time_entry_ids=tuple(sorted(item.entry.id for item in items)),
                quantity=quantity,
                unit_price=rate,
                dimensions=items[0].dimensions,
            )
        )
    return lines


def bill_key(*, psa: str, supplier_key: str, period: str, legal_entity: str, expense_ids: list[str]) -> str:
    """`expense_ids`: every source id on the bill (`BillLine.source_ids`); a bill of expenses alone keeps the
    key it had before bills held time."""
    return (
        f"payables:{psa}:{supplier_key}:{period}:{legal_entity}:{digest(','.join(sorted(expense_ids)))[:16]}"
    )


def bill_reference(idempotency_key: str, period: str) -> str:
    return f"EXP-{period}-{digest(idempotency_key)[:10].upper()}"


def due_date(issued: date) -> date:
    return issued + timedelta(days=BILL_TERMS_DAYS)


def _shell(text: str) -> str:
    if text and all(c.isalnum() or c in "-_.:/" for c in text):
        return text
    return "'" + text.replace("'", "'\"'\"'") + "'"
