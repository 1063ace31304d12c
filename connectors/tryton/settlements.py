"""What settled a customer invoice: payments, allocated credit notes, and an overpayment left on the party."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from canonical import CreditNote, InvoiceStatus, Money, Payment
from connectors.tryton import documents, mapping
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc


async def invoice_status(rpc: TrytonRpc, books: TrytonBooks, record: Mapping[str, Any]) -> InvoiceStatus:
    """The invoice as it stands: what is due and when, what paid it and which credit notes reduced it."""
    currency = await books.currency_code(record["currency"])
    to_pay = await rpc.read("account.move.line", record["lines_to_pay"], list(documents.MOVE_LINE_FIELDS))
    maturities = [line["maturity_date"] for line in to_pay if line["maturity_date"]]
    payments, credit_notes = await _settlements(rpc, books, record, currency)
    status = mapping.invoice_status(
        record,
        currency=currency,
        due_date=min(maturities) if maturities else None,
        payments=payments,
        credit_notes=credit_notes,
    )
    overpaid = await _overpaid(rpc, record)
    if overpaid > 0:
        status = status.model_copy(update={"amount_overpaid": Money(amount=overpaid, currency=currency)})
    return status


async def _overpaid(rpc: TrytonRpc, record: Mapping[str, Any]) -> Decimal:
    """What the invoice's payments brought in beyond what it owed, still open on the receivable.

    Tryton's pay wizard registers an overpayment as a second receivable line in the payment's move; only
    the line for the amount owed becomes a payment line of the invoice, the excess stays unreconciled on
    the party until it is refunded or applied (then it is reconciled, and no longer counted here).
    """
    own = set(record["payment_lines"])
    if not own:
        return Decimal(0)
    lines = await rpc.read("account.move.line", sorted(own), ["move"])
    moves = sorted({line["move"] for line in lines})
    extra = await rpc.search_read(
        "account.move.line",
        [
            ("move", "in", moves),
            ("account", "=", record["account"]),
            ("id", "not in", sorted(own)),
            ("reconciliation", "=", None),
        ],
        list(documents.MOVE_LINE_FIELDS),
    )
    return sum((mapping.line_amount(line, record["currency"]) for line in extra), Decimal(0))


async def _settlements(
    rpc: TrytonRpc, books: TrytonBooks, record: Mapping[str, Any], currency: str
) -> tuple[list[Payment], list[CreditNote]]:
    """Payments and allocated credit notes: the invoice's payment lines and whatever reconciled it."""
    own = set(record["lines_to_pay"])
    ids = [
        i for i in dict.fromkeys([*record["payment_lines"], *record["reconciliation_lines"]]) if i not in own
    ]
    if not ids:
        return [], []
    lines = await rpc.read("account.move.line", ids, list(documents.MOVE_LINE_FIELDS))
    # A voided invoice is reconciled with its own cancel move: that is not a settlement.
    lines = [line for line in lines if line["move"] != record["cancel_move"]]
    moves = await read_moves(rpc, {line["move"] for line in lines})
    payments: list[Payment] = []
    credited: dict[int, Decimal] = {}
    for line in sorted(lines, key=lambda line: line["id"]):
        move = moves[line["move"]]
        credit_note = documents.origin_id(move["origin"], "account.invoice")
        if credit_note is not None and credit_note != record["id"]:
            credited[credit_note] = credited.get(credit_note, Decimal(0)) + mapping.line_amount(
                line, record["currency"]
            )
        else:
            payments.append(
                mapping.payment_from_line(
                    line,
                    invoice_id=record["id"],
                    currency=currency,
                    invoice_currency_id=record["currency"],
                    move_description=move["description"],
                )
            )
    notes = [
        mapping.credit_note_from(
            credit, invoice_id=record["id"], currency=currency, amount=credited[credit["id"]]
        )
        for credit in await documents.read_invoices(rpc, sorted(credited))
    ]
    return payments, notes


async def read_moves(rpc: TrytonRpc, ids: set[int]) -> dict[int, dict[str, Any]]:
    return {m["id"]: m for m in await rpc.read("account.move", sorted(ids), ["id", "origin", "description"])}
