"""Supplier bills (ACCPAY invoices) read back from Xero for reconciliation, with their lines.

A bill's reference is carried as its InvoiceNumber (`connectors.xero.bills`), so the bills of a period are
those whose InvoiceNumber starts with the period's prefix. Xero's `where` filter selects them and paged
reads (`page`, 100 a page) bring their line items, which unpaged reads leave out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from canonical.booked_bills import BookedBill
from canonical.reference import BookedLine
from connectors.xero.client import SYSTEM, XeroClient
from connectors.xero.mapping import invoice_state, money
from connectors.xero.reference import booked_dimensions

# Quantities as the organisation stores them (4 decimals), not rounded to Xero's default 2.
_UNITDP = {"unitdp": 4}


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _quantity(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"expected a quantity from Xero, got {value!r}")
    return Decimal(value)


def booked_bill(doc: dict[str, Any]) -> BookedBill:
    currency = doc["CurrencyCode"]
    number = str(doc.get("InvoiceNumber") or "")
    return BookedBill(
        erp=SYSTEM,
        bill_id=doc["InvoiceID"],
        number=number,
        reference=number,
        state=invoice_state(doc["Status"]),
        # Bills are posted with LineAmountTypes NoTax: the total is what the supplier is owed.
        total=money(doc.get("Total"), currency),
        amount_paid=money(doc.get("AmountPaid"), currency),
        supplier_name=(doc.get("Contact") or {}).get("Name"),
        lines=tuple(
            BookedLine(
                description=line.get("Description") or "",
                quantity=_quantity(line.get("Quantity", 0)),
                amount=money(line.get("LineAmount"), currency),
                account_code=line.get("AccountCode") or None,
                dimensions=booked_dimensions(line.get("Tracking") or []),
            )
            for line in doc.get("LineItems") or []
        ),
    )


async def booked_bills(client: XeroClient, reference_prefix: str) -> list[BookedBill]:
    """ACCPAY invoices whose InvoiceNumber starts with the prefix, voided and deleted ones included."""
    if not reference_prefix:
        raise ValueError("a reference prefix is required: listing every bill is not a reconciliation")
    where = f'Type=="ACCPAY" AND InvoiceNumber.StartsWith({_literal(reference_prefix)})'
    found: list[BookedBill] = []
    async for page in client.pages("/Invoices", "Invoices", params={"where": where, **_UNITDP}):
        found.extend(booked_bill(doc) for doc in page.items)
    return found
