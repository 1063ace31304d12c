"""Supplier invoices (`account.invoice`, type `in`) read back from Tryton for reconciliation, with their
lines, where each is booked, and what has been paid.

`connectors.tryton.bills` keeps the bill's reference in Tryton's supplier `reference` and reports it as the
bill's number, so that is the number here too (Tryton's own sequence number is not what the PSA knows).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from canonical import Money
from canonical.booked_bills import BookedBill
from canonical.reference import BookedLine
from connectors.tryton import documents, mapping
from connectors.tryton.books import TrytonBooks
from connectors.tryton.reference import LINE_FIELDS, _dimensions, _like_prefix
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"


async def booked_bills(rpc: TrytonRpc, books: TrytonBooks, reference_prefix: str) -> list[BookedBill]:
    """Supplier invoices (not credit notes) whose reference starts with the prefix, cancelled included."""
    if not reference_prefix:
        raise ValueError("a reference prefix is required: listing every bill is not a reconciliation")
    company = await books.company()
    domain = [
        ("reference", "like", _like_prefix(reference_prefix)),
        ("type", "=", "in"),
        ("company", "=", company),
    ]
    records = [
        r
        for r in await documents.read_invoices(rpc, await rpc.search("account.invoice", domain))
        if r["total_amount"] >= 0
    ]
    lines: dict[int, list[dict[str, Any]]] = {}
    line_ids = [line for r in records for line in r["lines"]]
    for line in await rpc.read("account.invoice.line", line_ids, list(LINE_FIELDS)):
        if line.get("type", "line") == "line":
            lines.setdefault(line["invoice"], []).append(line)
    every_line = [line for found in lines.values() for line in found]
    accounts = {
        a["id"]: a["code"]
        for a in await rpc.read("account.account", sorted({ln["account"] for ln in every_line}), ["code"])
    }
    dimensions = await _dimensions(rpc, [e for ln in every_line for e in ln.get("analytic_accounts") or []])
    parties = {
        p["id"]: p["name"]
        for p in await rpc.read("party.party", sorted({r["party"] for r in records}), ["name"])
    }
    booked = []
    for record in records:
        currency = await books.currency_code(record["currency"])
        reference = record.get("reference") or ""
        # Tryton owes nothing on a bill that is not posted (draft or cancelled): nothing was paid on it.
        paid = (
            record["total_amount"] - record["amount_to_pay"]
            if record["state"] in ("posted", "paid")
            else Decimal(0)
        )
        booked.append(
            BookedBill(
                erp=SYSTEM,
                bill_id=str(record["id"]),
                number=reference,
                reference=reference,
                state=mapping.invoice_state(record["state"]),
                total=Money(amount=record["total_amount"], currency=currency),
                amount_paid=Money(amount=paid, currency=currency),
                supplier_name=parties.get(record["party"]),
                lines=tuple(
                    BookedLine(
                        description=line.get("description") or "",
                        quantity=Decimal(str(line["quantity"])),
                        amount=Money(amount=line["amount"], currency=currency),
                        account_code=accounts.get(line["account"]),
                        dimensions=tuple(
                            dimensions[e] for e in line.get("analytic_accounts") or [] if e in dimensions
                        ),
                    )
                    for line in sorted(lines.get(record["id"], []), key=lambda item: item["id"])
                ),
            )
        )
    return booked
