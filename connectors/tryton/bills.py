"""Payables in Tryton: suppliers are parties, bills are supplier invoices (`account.invoice`, type `in`).

Tryton has no idempotency header, so a bill is "look up, then create": our key is stored in the invoice's
`description` in the same `create` call (as for customer invoices), and the bill's reference in Tryton's
supplier `reference`; either finds the bill again. A supplier party carries our supplier key as its code,
which Tryton keeps unique.

A line goes as quantity x unit price; Tryton books currency.round(quantity x unit price), and the quantity
and price are already what Tryton stores (the entity's places), so the amount it books is ours. Its
project's dimensions go as analytic entries, one per analytic root, as on customer invoice lines.
"""

from __future__ import annotations

from typing import Any

from canonical import LegalEntity, Money, Payment
from canonical.payables import Bill, BillLine, BillStatus, PostedBill, Supplier
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.tryton import documents, mapping, payments
from connectors.tryton.analytic import ROOTS, TrytonAnalytics
from connectors.tryton.analytic import rejected as analytic_rejected
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"


async def ensure_supplier(rpc: TrytonRpc, books: TrytonBooks, supplier: Supplier) -> str:
    await books.company()
    found = await rpc.search("party.party", [("code", "=", supplier.key)], limit=2)
    if len(found) > 1:
        raise Conflict(f"several Tryton parties carry code {supplier.key!r}", system=SYSTEM)
    if found:
        return str(found[0])
    values: dict[str, Any] = {
        "name": supplier.name,
        "code": supplier.key,
        # A supplier invoice needs an invoice address, as a customer invoice does.
        "addresses": [["create", [{}]]],
    }
    if supplier.email:
        values["contact_mechanisms"] = [["create", [{"type": "email", "value": supplier.email}]]]
    (party,) = await rpc.create("party.party", [values])
    return str(party)


async def _expense_journal(books: TrytonBooks, rpc: TrytonRpc) -> int:
    found = await rpc.search("account.journal", [("type", "=", "expense")], limit=1)
    if not found:
        raise Rejected("Tryton has no expense journal for supplier invoices", system=SYSTEM)
    return int(found[0])


async def _payable_account(rpc: TrytonRpc, party: int) -> int:
    (record,) = await rpc.read("party.party", [party], ["account_payable"])
    if record["account_payable"]:
        return int(record["account_payable"])
    (config,) = await rpc.read("account.configuration", [1], ["default_account_payable"])
    if not config["default_account_payable"]:
        raise Rejected("Tryton has no default payable account configured", system=SYSTEM)
    return int(config["default_account_payable"])


async def _bills(rpc: TrytonRpc, company: int, field: str, value: str) -> list[dict[str, Any]]:
    domain = [(field, "=", value), ("type", "=", "in"), ("company", "=", company)]
    found = await documents.read_invoices(rpc, await rpc.search("account.invoice", domain))
    return [r for r in found if r["state"] != "cancelled" and r["total_amount"] >= 0]


def _posted(record: dict[str, Any], currency: str) -> PostedBill:
    return PostedBill(
        erp=SYSTEM,
        bill_id=str(record["id"]),
        number=str(record.get("reference") or ""),
        total=Money(amount=record["total_amount"], currency=currency),
        state=mapping.invoice_state(record["state"]),
    )


async def post_bill(
    rpc: TrytonRpc,
    books: TrytonBooks,
    bill: Bill,
    *,
    entity: LegalEntity,
    idempotency_key: str,
    analytics: TrytonAnalytics | None = None,
) -> PostedBill:
    if bill.legal_entity != entity.code:
        raise Rejected(
            f"bill is for entity {bill.legal_entity}, this is {entity.code}",
            system=SYSTEM,
            field_errors=[FieldError(field="legal_entity", message="wrong legal entity")],
        )
    if not bill.lines:
        raise Rejected(
            "a bill needs at least one line",
            system=SYSTEM,
            field_errors=[FieldError(field="lines", message="empty")],
        )
    company = await books.company()
    existing = await _bills(rpc, company, "description", idempotency_key) or await _bills(
        rpc, company, "reference", bill.reference
    )
    if len(existing) > 1:
        raise Conflict(f"several Tryton supplier invoices carry {bill.reference!r}", system=SYSTEM)
    record = (
        existing[0]
        if existing
        else await _create(rpc, books, bill, idempotency_key, entity=entity, analytics=analytics)
    )
    if record["state"] in ("draft", "validated"):
        await documents.post(rpc, record["id"])
        record = await documents.read_invoice(rpc, record["id"])
    return _posted(record, bill.currency)


async def _analytic_entries(
    analytics: TrytonAnalytics | None, line: BillLine, index: int
) -> tuple[list[dict[str, int]], list[FieldError]]:
    """The line's analytic entries (one per dimension), or what Tryton lacks for them."""
    if not line.dimensions:
        return [], []
    if analytics is None:
        raise Rejected("this Tryton connector books no analytic dimensions", system=SYSTEM)
    entries: list[dict[str, int]] = []
    errors: list[FieldError] = []
    for value in line.dimensions:
        account = await analytics.account(value.dimension, value.code)
        root = await analytics.root(value.dimension, create=False)
        if account is None or root is None:
            errors.append(
                FieldError(
                    field=f"lines[{index}].dimensions",
                    code="unknown_analytic_account",
                    message=f"Tryton has no {value.dimension} analytic account {value.code!r} under "
                    f"root {ROOTS[value.dimension][0]}",
                )
            )
            continue
        entries.append({"root": root, "account": account})
    return entries, errors


async def _create(
    rpc: TrytonRpc,
    books: TrytonBooks,
    bill: Bill,
    idempotency_key: str,
    *,
    entity: LegalEntity,
    analytics: TrytonAnalytics | None,
) -> dict[str, Any]:
    try:
        party = mapping.tryton_id(bill.supplier_id, what="supplier")
    except ValueError as exc:
        raise Rejected(
            str(exc), system=SYSTEM, field_errors=[FieldError(field="supplier_id", message=str(exc))]
        ) from None
    errors: list[FieldError] = []
    accounts: list[int] = []
    for index, line in enumerate(bill.lines):
        account = await books.account(line.account_code)
        if account is None:
            errors.append(
                FieldError(
                    field=f"lines[{index}].account_code",
                    code="unknown_account",
                    message=f"Tryton has no open account {line.account_code!r}",
                )
            )
        else:
            accounts.append(account)
    if errors:
        raise Rejected("; ".join(e.message for e in errors), system=SYSTEM, field_errors=errors)
    (supplier,) = await rpc.read("party.party", [party], ["addresses"])
    if not supplier["addresses"]:
        raise Rejected(
            f"Tryton supplier {party} has no address to invoice",
            system=SYSTEM,
            field_errors=[FieldError(field="supplier_id", message="no address")],
        )
    address = int(supplier["addresses"][0])
    company = await books.company()
    currency = await books.currency(bill.currency, "currency")
    lines: list[dict[str, Any]] = []
    analytic_errors: list[FieldError] = []
    for index, (line, account) in enumerate(zip(bill.lines, accounts, strict=True)):
        values: dict[str, Any] = {
            "type": "line",
            "invoice_type": "in",
            "company": company,
            "currency": currency,
            "party": party,
            "account": account,
            "description": line.description,
            # Without a unit Tryton keeps the quantity as given; the entity's places are what rating kept.
            "quantity": mapping.line_quantity(
                line.quantity, digits=entity.quantity_places, field=f"lines[{index}].quantity"
            ),
            "unit_price": line.unit_amount.amount,
        }
        entries, missing = await _analytic_entries(analytics, line, index)
        analytic_errors += missing
        if entries:
            values["analytic_accounts"] = [["create", entries]]
        lines.append(values)
    if analytic_errors:
        raise analytic_rejected(analytic_errors)
    values = {
        "type": "in",
        "company": company,
        "party": party,
        "invoice_address": address,
        "currency": currency,
        "account": await _payable_account(rpc, party),
        "journal": await _expense_journal(books, rpc),
        "payment_term": await books.payment_term((bill.due_date - bill.issue_date).days),
        "invoice_date": bill.issue_date,
        "reference": bill.reference,
        "description": idempotency_key,
        "lines": [["create", lines]],
    }
    (invoice_id,) = await rpc.create("account.invoice", [values])
    return await documents.read_invoice(rpc, invoice_id)


async def bill_record(rpc: TrytonRpc, books: TrytonBooks, bill_id: str) -> dict[str, Any]:
    try:
        number = mapping.tryton_id(bill_id, what="bill")
    except ValueError as exc:
        raise NotFound(str(exc), system=SYSTEM, status_code=None) from None
    company = await books.company()
    domain = [("id", "=", number), ("type", "=", "in"), ("company", "=", company)]
    if not await rpc.search("account.invoice", domain):
        raise NotFound(f"Tryton has no supplier invoice {bill_id}", system=SYSTEM, status_code=None)
    return await documents.read_invoice(rpc, number)


async def get_bill(rpc: TrytonRpc, books: TrytonBooks, bill_id: str) -> BillStatus:
    record = await bill_record(rpc, books, bill_id)
    currency = await books.currency_code(record["currency"])
    paid = record["total_amount"] - record["amount_to_pay"]
    return BillStatus(
        bill_id=str(record["id"]),
        number=str(record.get("reference") or ""),
        state=mapping.invoice_state(record["state"]),
        total=Money(amount=record["total_amount"], currency=currency),
        amount_paid=Money(amount=paid, currency=currency),
    )


async def pay_bill(
    rpc: TrytonRpc, books: TrytonBooks, bill_id: str, amount: Money, *, reference: str, idempotency_key: str
) -> Payment:
    record = await bill_record(rpc, books, bill_id)
    return await payments.apply_payment(
        rpc, books, record, amount, reference=reference, idempotency_key=idempotency_key
    )
