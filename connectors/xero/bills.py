"""Payables in Xero: suppliers are contacts, bills are ACCPAY invoices.

For an ACCPAY invoice Xero's `InvoiceNumber` is the supplier's own reference and need not be unique, and
`Reference` is for sales invoices only (accounting spec, Invoice): so the bill's reference is carried as its
InvoiceNumber, and a retried post finds the bill by it before creating one. The supplier's ContactNumber
carries our supplier key, so a supplier is found again instead of created twice.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from canonical import LegalEntity, Money, Payment
from canonical.payables import Bill, BillStatus, PostedBill, Supplier
from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.xero import mapping
from connectors.xero.client import SYSTEM, XeroClient

# Bill lines carry what the supplier charged, tax included: the receipt's tax is not ours to compute.
LINE_AMOUNT_TYPES = "NoTax"
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


def bill_payload(bill: Bill) -> dict[str, Any]:
    return {
        "Type": "ACCPAY",
        "Contact": {"ContactID": bill.supplier_id},
        "InvoiceNumber": bill.reference,
        "Date": bill.issue_date.isoformat(),
        "DueDate": bill.due_date.isoformat(),
        "CurrencyCode": bill.currency,
        "Status": "AUTHORISED",
        "LineAmountTypes": LINE_AMOUNT_TYPES,
        "LineItems": [
            {
                "Description": line.description,
                "Quantity": 1,
                "UnitAmount": line.amount.amount,
                "AccountCode": line.account_code,
            }
            for line in bill.lines
        ],
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
    existing = await find_bill(client, bill.reference)
    if existing is not None:
        return existing
    body = await client.put("/Invoices", {"Invoices": [bill_payload(bill)]}, idempotency_key=idempotency_key)
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
