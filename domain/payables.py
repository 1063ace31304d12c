"""Payables rules: who an expense is owed to, which cost account its bill line books to, and the bill's
reference and idempotency key. Pure and deterministic, so the Payables workflow calls it and replays it.

- A vendor named on the expense is owed the money (the firm pays the vendor); otherwise a reimbursable
  expense is owed to the person who paid it. Each supplier has a stable key of ours, which the ERP's
  supplier record carries.
- A line books to the `cost_account_code` of the entity's `expense_category` rule for its category, else of
  the `expense_category *` rule. No such cost account, or one the synced chart lacks or holds archived, is a
  finance exception for that expense; the supplier's other expenses are billed.
- The bill's reference and key come from the business event: PSA, supplier, period, entity and the sorted
  expense ids. The same expenses always make the same bill, however often the run is retried or restarted.
"""

from __future__ import annotations

import re
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict

from canonical.payables import BillLine, PayableExpense, Supplier
from domain.account_mapping import ANY, NOT_IN_ERP, SET_COMMAND, UNMAPPED, AccountMap, AccountProblem
from domain.idempotency import digest

# Our supplier key must fit the ERPs' supplier reference (Xero's ContactNumber holds 50 characters).
SUPPLIER_KEY_LENGTH = 50
# Reimbursements are paid on the firm's usual supplier terms.
BILL_TERMS_DAYS = 14


def supplier_for(psa: str, expense: PayableExpense) -> Supplier:
    if expense.vendor:
        name = " ".join(expense.vendor.split())
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        key = f"vendor:{slug}"
        if len(key) > SUPPLIER_KEY_LENGTH:
            key = f"vendor:{slug[:30]}-{digest(name.lower())[:12]}"
        return Supplier(key=key, name=name)
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


def bill_line(expense: PayableExpense, account_code: str) -> BillLine:
    what = expense.category or "Expense"
    detail = f" - {expense.notes}" if expense.notes else ""
    receipt = f" (receipt: {expense.receipt_ref})" if expense.receipt_ref else ""
    return BillLine(
        description=f"{expense.date.isoformat()} {what}{detail}{receipt}",
        amount=expense.amount,
        account_code=account_code,
        expense_id=expense.id,
    )


def bill_key(*, psa: str, supplier_key: str, period: str, legal_entity: str, expense_ids: list[str]) -> str:
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
