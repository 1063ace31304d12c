"""Payments received on customer invoices: applied through Tryton's pay wizard, found again by our key, and
read back by when they changed.

The pay wizard has no idempotency key; ours travels in the payment move's description (mapping.py says how),
so a retried payment finds the first one.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from canonical import Money, Payment
from connectors.errors import Conflict, FieldError, Rejected
from connectors.tryton import documents, mapping
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc, next_view_state, view_values
from connectors.tryton.settlements import read_moves

SYSTEM = "tryton"


async def apply_payment(
    rpc: TrytonRpc,
    books: TrytonBooks,
    record: Mapping[str, Any],
    amount: Money,
    *,
    reference: str,
    idempotency_key: str,
) -> Payment:
    """Pay the invoice through Tryton's pay wizard, once per idempotency key."""
    description = mapping.payment_description(reference, idempotency_key)
    existing = await _payment_by_key(rpc, books, record, idempotency_key)
    if existing is not None:
        return existing
    currency = await books.currency_code(record["currency"])
    documents.check_amount(amount, currency)
    if record["state"] != "posted":
        raise Rejected(
            f"Tryton invoice {record['number'] or record['id']} is {record['state']}, only a "
            "posted invoice takes payments",
            system=SYSTEM,
        )
    if amount.amount > record["amount_to_pay"]:
        raise Rejected(
            f"payment of {amount} exceeds the {record['amount_to_pay']} {currency} still due",
            system=SYSTEM,
            field_errors=[FieldError(field="amount", message="overpayment")],
        )
    method = await books.payment_method()
    context = {"active_model": "account.invoice", "active_id": record["id"], "active_ids": [record["id"]]}
    async with rpc.wizard_session("account.invoice.pay", context=context) as wizard:
        start = await wizard.start()
        result = await wizard.execute(
            "choice",
            {
                "start": {
                    **view_values(start),
                    "amount": amount.amount,
                    "payment_method": method,
                    "description": description,
                }
            },
        )
        if next_view_state(result) == "ask":
            # Less than is due: keep the rest open (a partial payment), never write it off.
            await wizard.execute("pay", {"ask": {**view_values(result), "type": "partial"}})
    payment = await _payment_by_key(rpc, books, record, idempotency_key)
    if payment is None:
        raise Rejected(f"Tryton's pay wizard recorded no payment for {description!r}", system=SYSTEM)
    return payment


async def _payment_by_key(
    rpc: TrytonRpc, books: TrytonBooks, record: Mapping[str, Any], idempotency_key: str
) -> Payment | None:
    domain = [("origin", "=", f"account.invoice,{record['id']}"), ("company", "=", record["company"])]
    moves = await rpc.search_read("account.move", domain, ["id", "description"])
    matching = [m for m in moves if mapping.split_payment_description(m["description"])[1] == idempotency_key]
    if not matching:
        return None
    if len(matching) > 1:
        raise Conflict(f"several Tryton payments carry idempotency key {idempotency_key!r}", system=SYSTEM)
    move = matching[0]
    lines = await rpc.search_read(
        "account.move.line",
        [("move", "=", move["id"]), ("account", "=", record["account"])],
        list(documents.MOVE_LINE_FIELDS),
    )
    if not lines:
        return None
    return mapping.payment_from_line(
        lines[0],
        invoice_id=record["id"],
        currency=await books.currency_code(record["currency"]),
        invoice_currency_id=record["currency"],
        move_description=move["description"],
    )


async def payments_since(
    rpc: TrytonRpc, books: TrytonBooks, modified_since: datetime | None
) -> list[Payment]:
    company = await books.company()
    domain: list[Any] = [
        ("invoice_payments.type", "=", "out"),
        ("invoice_payments.company", "=", company),
    ]
    if modified_since is not None:
        since = (
            modified_since.astimezone(UTC) if modified_since.tzinfo else modified_since.replace(tzinfo=UTC)
        )
        domain.append(["OR", ("create_date", ">=", since), ("write_date", ">=", since)])
    lines = await rpc.search_read(
        "account.move.line",
        domain,
        [*documents.MOVE_LINE_FIELDS, "invoice_payments"],
        order=[("id", "ASC")],
    )
    if not lines:
        return []
    moves = await read_moves(rpc, {line["move"] for line in lines})
    invoice_ids = sorted({i for line in lines for i in line["invoice_payments"]})
    currencies = {
        r["id"]: r["currency"] for r in await rpc.read("account.invoice", invoice_ids, ["id", "currency"])
    }
    payments = []
    for line in lines:
        move = moves[line["move"]]
        for invoice_id in line["invoice_payments"]:
            origin = documents.origin_id(move["origin"], "account.invoice")
            if origin is not None and origin != invoice_id:
                continue  # a credit note allocated to the invoice, not money received
            payments.append(
                mapping.payment_from_line(
                    line,
                    invoice_id=invoice_id,
                    currency=await books.currency_code(currencies[invoice_id]),
                    invoice_currency_id=currencies[invoice_id],
                    move_description=move["description"],
                )
            )
    return payments
