"""Payables in Xero: suppliers are contacts, bills are ACCPAY invoices.

For an ACCPAY invoice Xero's `InvoiceNumber` is the supplier's own reference and need not be unique, and
`Reference` is for sales invoices only (accounting spec, Invoice): so the bill's reference is carried as its
InvoiceNumber, and a retried post finds the bill by it before creating one. The supplier's ContactNumber
carries our supplier key, so a supplier is found again instead of created twice.

A line goes as Quantity x UnitAmount with its LineAmount, as sales lines do: the quantity and unit price are
already what Xero keeps (4 decimals, with `unitdp=4`), so the amount Xero books is ours. Its project's
dimensions go as Tracking under the categories the entity tracks, as on sales lines.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from canonical import LegalEntity, Money, Payment
from canonical.dimensions import Dimension
from canonical.money import places_of
from canonical.payables import Bill, BillLine, BillStatus, PostedBill, Supplier
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.xero import mapping
from connectors.xero.client import SYSTEM, XeroClient

# Bill lines carry what the supplier charged, tax included: the receipt's tax is not ours to compute.
LINE_AMOUNT_TYPES = "NoTax"
# Unit amounts to 4 decimals (Xero keeps 2 without it), as sales invoices are sent.
UNITDP = {"unitdp": 4}
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _literal(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


async def find_supplier(client: XeroClient, supplier: Supplier) -> str | None:
    body = await client.get("/Contacts", params={"where": f"ContactNumber=={_literal(supplier.key)}"})
    contacts = body.get("Contacts", [])
    if len(contacts) > 1:
        raise Conflict(f"{len(contacts)} Xero contacts carry ContactNumber {supplier.key!r}", system=SYSTEM)
    return str(contacts[0]["ContactID"]) if contacts else None


async def ensure_supplier(
    client: XeroClient, supplier: Supplier, *, entity: LegalEntity, idempotency_key: str
) -> str:
    existing = await find_supplier(client, supplier)
    if existing is not None:
        return existing
    payload: dict[str, Any] = {
        "Name": supplier.name,
        "ContactNumber": supplier.key,
        "DefaultCurrency": entity.currency,
        "IsSupplier": True,
    }
    if supplier.email:
        payload["EmailAddress"] = supplier.email
    body = await client.put("/Contacts", {"Contacts": [payload]}, idempotency_key=idempotency_key)
    return str(body["Contacts"][0]["ContactID"])


def _posted(doc: dict[str, Any]) -> PostedBill:
    return PostedBill(
        erp=SYSTEM,
        bill_id=doc["InvoiceID"],
        number=str(doc.get("InvoiceNumber") or ""),
        total=mapping.money(doc.get("Total"), doc["CurrencyCode"]),
        state=mapping.invoice_state(doc["Status"]),
    )


async def find_bill(client: XeroClient, reference: str) -> PostedBill | None:
    where = f'Type=="ACCPAY" AND InvoiceNumber=={_literal(reference)}'
    found: list[dict[str, Any]] = []
    async for page in client.pages("/Invoices", "Invoices", params={"where": where}):
        found.extend(page.items)
    live = [doc for doc in found if doc["Status"] not in ("VOIDED", "DELETED")]
    if len(live) > 1:
        raise Conflict(f"{len(live)} Xero bills carry number {reference!r}", system=SYSTEM)
    return _posted(live[0]) if live else None


def line_tracking(line: BillLine, tracked: tuple[Dimension, ...]) -> list[dict[str, str]]:
    """The line's Tracking, as on sales lines (connectors.xero.mapping.line_tracking): a dimension the entity
    does not track has no category to go under and is left off."""
    return [
        {"Name": mapping.TRACKING_CATEGORIES[value.dimension], "Option": value.code}
        for value in line.dimensions
        if value.dimension in tracked
    ]


def _line_item(line: BillLine, tracked: tuple[Dimension, ...]) -> dict[str, Any]:
    tracking = line_tracking(line, tracked)
    return {
        "Description": line.description,
        "Quantity": line.quantity,
        "UnitAmount": line.unit_amount.amount,
        # Quantity x UnitAmount rounded as Xero rounds it: sent so the booked line is ours.
        "LineAmount": line.amount.amount,
        "AccountCode": line.account_code,
        **({"Tracking": tracking} if tracking else {}),
    }


def _unrounded(bill: Bill) -> list[FieldError]:
    return [
        FieldError(
            field=f"LineItems[{index}].{name}",
            message=f"{value} has more than the {places} decimal places Xero keeps",
            code="rounding",
        )
        for index, line in enumerate(bill.lines)
        for name, value, places in (
            ("Quantity", line.quantity, mapping.QUANTITY_PLACES),
            ("UnitAmount", line.unit_amount.amount, mapping.UNIT_AMOUNT_PLACES),
        )
        if places_of(value) > places
    ]


def bill_payload(bill: Bill, tracked: tuple[Dimension, ...]) -> dict[str, Any]:
    return {
        "Type": "ACCPAY",
        "Contact": {"ContactID": bill.supplier_id},
        "InvoiceNumber": bill.reference,
        "Date": bill.issue_date.isoformat(),
        "DueDate": bill.due_date.isoformat(),
        "CurrencyCode": bill.currency,
        "Status": "AUTHORISED",
        "LineAmountTypes": LINE_AMOUNT_TYPES,
        "LineItems": [_line_item(line, tracked) for line in bill.lines],
    }


async def post_bill(
    client: XeroClient, bill: Bill, *, entity: LegalEntity, idempotency_key: str
) -> PostedBill:
    if bill.legal_entity != entity.code:
        raise Rejected(
            f"bill {bill.reference} belongs to entity {bill.legal_entity}, this Xero organisation books "
            f"{entity.code}",
            system=SYSTEM,
        )
    if not bill.lines:
        raise Rejected(
            "a bill needs at least one line",
            system=SYSTEM,
            field_errors=[FieldError(field="LineItems", message="empty")],
        )
    unrounded = _unrounded(bill)
    if unrounded:
        raise Rejected(
            f"bill {bill.reference} has lines Xero would round, booking another total than ours",
            system=SYSTEM,
            field_errors=unrounded,
        )
    existing = await find_bill(client, bill.reference)
    if existing is not None:
        return existing
    body = await client.put(
        "/Invoices",
        {"Invoices": [bill_payload(bill, entity.tracked_dimensions)]},
        idempotency_key=idempotency_key,
        params=UNITDP,
    )
    return _posted(body["Invoices"][0])


async def bill_document(client: XeroClient, bill_id: str) -> dict[str, Any]:
    if not _GUID.fullmatch(bill_id):
        raise NotFound(f"{bill_id!r} is not a Xero InvoiceID (a GUID)", system=SYSTEM)
    doc: dict[str, Any] = (await client.get(f"/Invoices/{bill_id}"))["Invoices"][0]
    if doc.get("Type") != "ACCPAY":
        raise NotFound(f"Xero invoice {bill_id} is not a bill", system=SYSTEM)
    return doc


async def get_bill(client: XeroClient, bill_id: str) -> BillStatus:
    doc = await bill_document(client, bill_id)
    currency = doc["CurrencyCode"]
    return BillStatus(
        bill_id=doc["InvoiceID"],
        number=str(doc.get("InvoiceNumber") or ""),
        state=mapping.invoice_state(doc["Status"]),
        total=mapping.money(doc.get("Total"), currency),
        amount_paid=mapping.money(doc.get("AmountPaid"), currency),
    )


async def pay_bill(
    client: XeroClient,
    bill_id: str,
    amount: Money,
    *,
    reference: str,
    bank_account_code: str,
    idempotency_key: str,
) -> Payment:
    doc = await bill_document(client, bill_id)
    if doc["CurrencyCode"] != amount.currency:
        raise Rejected(
            f"a payment of {amount} cannot settle bill {doc.get('InvoiceNumber')} in {doc['CurrencyCode']}",
            system=SYSTEM,
            field_errors=[FieldError(field="Amount", message="currency differs from the bill's")],
        )
    payload = mapping.payment_payload(
        bill_id, amount, reference=reference, account_code=bank_account_code, on=datetime.now(UTC).date()
    )
    body = await client.put("/Payments", payload, idempotency_key=idempotency_key)
    return mapping.payment(body["Payments"][0], doc["CurrencyCode"])
