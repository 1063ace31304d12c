"""Canonical models to Xero payloads and back (developer.xero.com/documentation/api/accounting).

Amounts stay Decimal end to end: they leave as exact JSON numbers (wire.dumps) and come back as Decimal
(wire.loads). Sales invoices are sent with LineAmountTypes Exclusive, so Xero rounds each line, adds tax
per line, and its SubTotal equals our `Invoice.total` to the cent.

Xero keeps Quantity to 4 decimals and, with `unitdp=4` (always sent by the connector), UnitAmount to 4; it
books LineAmount = Quantity x UnitAmount rounded half-up to the cent (developer.xero.com/documentation/
api-guides/rounding-in-xero). Rating rounds quantities to those places before pricing a line (see
domain.erp_rounding), so each line goes out exactly as Xero will store it, with the LineAmount we computed;
a line with more decimals than Xero keeps is refused here rather than rounded by Xero behind our total.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from canonical import (
    Account,
    CreditNote,
    ErpCustomer,
    Invoice,
    InvoiceLine,
    InvoiceState,
    InvoiceStatus,
    LegalEntity,
    Money,
    Payment,
    PostedInvoice,
)
from canonical.dimensions import Dimension
from canonical.money import places_of
from canonical.parties import DEFAULT_TRACKED_DIMENSIONS
from connectors.errors import FieldError, Rejected
from connectors.xero.wire import parse_xero_date

ERP = "xero"
CONTACT_NUMBER_MAX = 50  # Contact.ContactNumber maxLength in xero_accounting.yaml
QUANTITY_PLACES = 4
UNIT_AMOUNT_PLACES = 4  # with unitdp=4; 2 without it
# The tracking category each dimension is booked under (connectors.xero.tracking makes them); an entity
# tracks one or two of them (`LegalEntity.tracked_dimensions`), Xero having room for two.
TRACKING_CATEGORIES: dict[Dimension, str] = {
    "project": "Project",
    "customer": "Customer",
    "practice": "Practice",
}

_STATES = {
    "DRAFT": InvoiceState.DRAFT,
    "SUBMITTED": InvoiceState.DRAFT,
    "AUTHORISED": InvoiceState.AWAITING_PAYMENT,
    "PAID": InvoiceState.PAID,
    "VOIDED": InvoiceState.VOIDED,
    "DELETED": InvoiceState.VOIDED,
}
# Field names Xero mentions in its validation messages, so a FieldError can point at the field.
_FIELDS = re.compile(
    r"\b(TaxType|AccountCode|ContactID|ContactNumber|Contact|CurrencyCode|DueDate|Date|Quantity|UnitAmount|"
    r"Description|InvoiceNumber|Reference|Amount|Account|Invoice|Name|EmailAddress|ItemCode)\b"
)


def _decimal(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError(f"expected a number from Xero, got {value!r}")
    return Decimal(value)


def money(value: Any, currency: str) -> Money:
    return Money(amount=_decimal(value if value is not None else 0), currency=currency)


def invoice_state(status: str) -> InvoiceState:
    try:
        return _STATES[status]
    except KeyError:
        raise ValueError(f"unknown Xero invoice status {status!r}") from None


# --- outbound ---------------------------------------------------------------------------------------------


def contact_payload(account: Account, entity: LegalEntity) -> dict[str, Any]:
    """A Xero contact for the CRM account; ContactNumber carries the CRM id so it can be found again."""
    if len(account.id) > CONTACT_NUMBER_MAX:
        raise ValueError(
            f"CRM account id {account.id!r} is longer than Xero's ContactNumber "
            f"({CONTACT_NUMBER_MAX} characters)"
        )
    payload: dict[str, Any] = {
        "Name": account.name,
        "ContactNumber": account.id,
        "AccountNumber": account.id,
        "DefaultCurrency": entity.currency,
        "IsCustomer": True,
    }
    if account.tax_number:
        payload["TaxNumber"] = account.tax_number
    if account.billing_address is not None:
        address = account.billing_address
        payload["Addresses"] = [
            {
                "AddressType": "POBOX",  # Xero's billing (postal) address
                "AddressLine1": address.street,
                "City": address.city,
                "PostalCode": address.postal_code or "",
                "Region": address.region or "",
                "Country": address.country,
            }
        ]
    return payload


def line_tracking(
    line: InvoiceLine, tracked: tuple[Dimension, ...] = DEFAULT_TRACKED_DIMENSIONS
) -> list[dict[str, str]]:
    """A line item's Tracking: each tracked dimension under its category, by option name (the value's
    code). A dimension the entity does not track has no category to go under (a project made before finance
    changed which two are tracked still carries it), so it is left off rather than refused."""
    return [
        {"Name": TRACKING_CATEGORIES[value.dimension], "Option": value.code}
        for value in line.dimensions
        if value.dimension in tracked
    ]


def _line_items(
    invoice: Invoice, default_account_code: str, tracked: tuple[Dimension, ...]
) -> list[dict[str, Any]]:
    errors = [
        FieldError(
            field=f"LineItems[{index}].{name}",
            message=f"{value} has more than the {places} decimal places Xero keeps",
            code="rounding",
        )
        for index, line in enumerate(invoice.lines)
        for name, value, places in (
            ("Quantity", line.quantity, QUANTITY_PLACES),
            ("UnitAmount", line.unit_price.amount, UNIT_AMOUNT_PLACES),
        )
        if places_of(value) > places
    ]
    if errors:
        raise Rejected(
            f"invoice {invoice.reference} has lines Xero would round, booking another total than ours; "
            "rate them with the entity's rounding rule",
            system=ERP,
            field_errors=errors,
        )
    return [
        {
            "Description": line.description,
            "Quantity": line.quantity,
            "UnitAmount": line.unit_price.amount,
            # Equal to Quantity x UnitAmount rounded as Xero rounds it: sent so the booked line is ours.
            "LineAmount": line.amount.amount,
            "AccountCode": line.account_code or default_account_code,
            "TaxType": line.tax_code,
            **({"Tracking": tracking} if (tracking := line_tracking(line, tracked)) else {}),
        }
        for line in invoice.lines
    ]


def invoice_payload(
    invoice: Invoice,
    *,
    default_account_code: str,
    tracked: tuple[Dimension, ...] = DEFAULT_TRACKED_DIMENSIONS,
) -> dict[str, Any]:
    return {
        "Type": "ACCREC",
        "Contact": {"ContactID": invoice.customer_id},
        "Date": invoice.issue_date.isoformat(),
        "DueDate": invoice.due_date.isoformat(),
        "LineAmountTypes": "Exclusive",
        "Reference": invoice.reference,
        "CurrencyCode": invoice.currency,
        "Status": "AUTHORISED",
        "LineItems": _line_items(invoice, default_account_code, tracked),
    }


def credit_note_payload(
    invoice: dict[str, Any], amount: Money, *, reason: str, default_account_code: str
) -> dict[str, Any]:
    """A credit note worth `amount` including tax, at the tax type of the invoice's first line."""
    lines = invoice.get("LineItems") or []
    first = lines[0] if lines else {}
    return {
        "Type": "ACCRECCREDIT",
        "Contact": {"ContactID": invoice["Contact"]["ContactID"]},
        "LineAmountTypes": "Inclusive",
        "Reference": f"Credit for {invoice['InvoiceNumber']}",
        "CurrencyCode": amount.currency,
        "Status": "AUTHORISED",
        "LineItems": [
            {
                "Description": reason,
                "Quantity": Decimal(1),
                "UnitAmount": amount.amount,
                "AccountCode": first.get("AccountCode") or default_account_code,
                "TaxType": first.get("TaxType") or "NONE",
            }
        ],
    }


def allocation_payload(invoice_id: str, amount: Money, on: date) -> dict[str, Any]:
    return {
        "Allocations": [
            {"Invoice": {"InvoiceID": invoice_id}, "Amount": amount.amount, "Date": on.isoformat()}
        ]
    }


def payment_payload(
    invoice_id: str, amount: Money, *, reference: str, account_code: str, on: date
) -> dict[str, Any]:
    return {
        "Payments": [
            {
                "Invoice": {"InvoiceID": invoice_id},
                "Account": {"Code": account_code},
                "Date": on.isoformat(),
                "Amount": amount.amount,
                "Reference": reference,
            }
        ]
    }


# --- inbound ----------------------------------------------------------------------------------------------


def posted_invoice(doc: dict[str, Any]) -> PostedInvoice:
    """`total` is the net SubTotal, the figure our Invoice.total is computed as."""
    return PostedInvoice(
        erp=ERP,
        invoice_id=doc["InvoiceID"],
        number=doc.get("InvoiceNumber") or "",
        total=money(doc.get("SubTotal"), doc["CurrencyCode"]),
        state=invoice_state(doc["Status"]),
    )


def erp_customer(contact: dict[str, Any]) -> ErpCustomer:
    """A Xero contact; ContactNumber is where ps-sync keeps the CRM account id (see contact_payload)."""
    return ErpCustomer(
        id=contact["ContactID"],
        name=str(contact.get("Name") or ""),
        tax_number=contact.get("TaxNumber") or None,
        external_ref=contact.get("ContactNumber") or None,
    )


def invoice_status(doc: dict[str, Any]) -> InvoiceStatus:
    currency = doc["CurrencyCode"]
    invoice_id = doc["InvoiceID"]
    return InvoiceStatus(
        erp=ERP,
        invoice_id=invoice_id,
        number=doc.get("InvoiceNumber") or "",
        state=invoice_state(doc["Status"]),
        total=money(doc.get("Total"), currency),
        amount_due=money(doc.get("AmountDue"), currency),
        amount_paid=money(doc.get("AmountPaid"), currency),
        amount_credited=money(doc.get("AmountCredited"), currency),
        due_date=parse_xero_date(doc["DueDate"]) if doc.get("DueDate") else None,
        payments=tuple(
            Payment(
                id=p["PaymentID"],
                invoice_id=invoice_id,
                amount=money(p["Amount"], currency),
                date=parse_xero_date(p["Date"]),
                reference=p.get("Reference") or None,
            )
            for p in doc.get("Payments") or []
        ),
        credit_notes=tuple(
            CreditNote(
                id=c["CreditNoteID"],
                invoice_id=invoice_id,
                amount=money(c.get("AppliedAmount", c.get("Total")), currency),
                date=parse_xero_date(c["Date"]),
                number=c.get("CreditNoteNumber"),
            )
            for c in doc.get("CreditNotes") or []
        ),
    )


def payment(doc: dict[str, Any], currency: str) -> Payment:
    """A payment from GET/PUT /Payments; its currency is its invoice's."""
    return Payment(
        id=doc["PaymentID"],
        invoice_id=doc["Invoice"]["InvoiceID"],
        amount=money(doc["Amount"], currency),
        date=parse_xero_date(doc["Date"]),
        reference=doc.get("Reference") or None,
    )


def credit_note(doc: dict[str, Any], invoice_id: str, amount: Money) -> CreditNote:
    return CreditNote(
        id=doc["CreditNoteID"],
        invoice_id=invoice_id,
        amount=amount,
        date=parse_xero_date(doc["Date"]),
        number=doc.get("CreditNoteNumber"),
    )


def _field_of(message: str, prefix: str | None) -> str | None:
    match = _FIELDS.search(message)
    field = match.group(1) if match else None
    if prefix and field:
        return f"{prefix}.{field}"
    return field or prefix


def element_errors(element: dict[str, Any], prefix: str | None = None) -> list[FieldError]:
    """Validation errors of one element, its contact and its lines, each pointing at a field if it can."""
    errors = [
        FieldError(
            field=_field_of(e.get("Message", ""), prefix),
            message=e.get("Message", ""),
            code="ValidationException",
        )
        for e in element.get("ValidationErrors") or []
    ]
    contact = element.get("Contact")
    if isinstance(contact, dict):
        errors.extend(element_errors(contact, "Contact"))
    for index, line in enumerate(element.get("LineItems") or []):
        if isinstance(line, dict):
            errors.extend(element_errors(line, f"LineItems[{index}]"))
    return errors


def field_errors(body: dict[str, Any]) -> list[FieldError]:
    """FieldErrors from a 400 ApiException body (ValidationException with Elements, or a bare message)."""
    errors: list[FieldError] = []
    for index, element in enumerate(body.get("Elements") or []):
        if isinstance(element, dict):
            found = element_errors(element)
            errors.extend(
                found
                if len(body["Elements"]) == 1
                else [
                    FieldError(
                        field=f"[{index}].{e.field}" if e.field else f"[{index}]",
                        message=e.message,
                        code=e.code,
                    )
                    for e in found
                ]
            )
    if not errors and body.get("Message"):
        errors.append(FieldError(field=None, message=str(body["Message"]), code=str(body.get("Type") or "")))
    return errors
