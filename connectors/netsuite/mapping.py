"""Canonical models to NetSuite records and back (REST web services record API, v1).

Records reference each other by internal id ({"id": "42"}). Amounts are JSON numbers, read as Decimal.

How NetSuite books a line, and what ps-sync assumes of it (stated because not all of it could be confirmed):
- a line's amount is quantity x rate rounded to the currency's precision (USD: 2; NetSuite supports only 0
  and 2), and the amount field may be given explicitly; ps-sync always sends it, equal to its own
  quantity x unit price rounded half-up to the cent, so the booked line is ours whichever way NetSuite would
  have rounded;
- quantities and rates are sent with at most 4 decimals (`QUANTITY_PLACES`, `RATE_PLACES`), which NetSuite
  keeps as sent (we could not confirm NetSuite's own limits; they are at least this);
- tax is computed per line from the line's tax code and rounded half-up to the cent; the invoice's subtotal
  is the sum of line amounts (the net total ps-sync compares with its own) and its total adds the tax.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from canonical import (
    Account,
    CreditNote,
    ErpCustomer,
    Invoice,
    InvoiceState,
    InvoiceStatus,
    Money,
    Payment,
    PostedInvoice,
)
from canonical.money import minor_units, places_of
from connectors.errors import FieldError, Rejected
from connectors.netsuite.errors import SYSTEM
from connectors.netsuite.wire import decimal

QUANTITY_PLACES = 4
RATE_PLACES = 4
# otherRefNum (the "PO/Check Number" field) is where the invoice carries ps-sync's business reference.
REFERENCE_FIELD = "otherRefNum"
# NetSuite external ids are limited in length; a longer idempotency key is replaced by its digest.
EXTERNAL_ID_MAX = 100

_STATES = {
    "Open": InvoiceState.AWAITING_PAYMENT,
    "Paid In Full": InvoiceState.PAID,
    "Voided": InvoiceState.VOIDED,
    "Pending Approval": InvoiceState.DRAFT,
    "Rejected": InvoiceState.VOIDED,
}


def ref(record_id: str) -> dict[str, str]:
    return {"id": record_id}


def ref_id(value: Any) -> str | None:
    if isinstance(value, dict) and value.get("id") is not None:
        return str(value["id"])
    return None


def invoice_state(record: dict[str, Any]) -> InvoiceState:
    status = record.get("status") or {}
    name = status.get("refName") if isinstance(status, dict) else status
    try:
        return _STATES[str(name)]
    except KeyError:
        raise ValueError(f"unknown NetSuite invoice status {name!r}") from None


def money(value: Any, currency: str) -> Money:
    return Money(amount=decimal(value if value is not None else 0), currency=currency)


def sublist(record: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """A sublist's lines as an expanded read returns them ({"items": [...]})."""
    value = record.get(name) or {}
    items = value.get("items") if isinstance(value, dict) else None
    return [item for item in items or [] if isinstance(item, dict)]


def round_cents(amount: Decimal, currency: str) -> Decimal:
    return amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


# --- outbound ---------------------------------------------------------------------------------------------


def customer_payload(account: Account, *, subsidiary_id: str, currency_id: str) -> dict[str, Any]:
    """A company customer whose externalId is the CRM account id, so `eid:` finds it again."""
    payload: dict[str, Any] = {
        "externalId": account.id,
        "companyName": account.name,
        "isPerson": False,
        "subsidiary": ref(subsidiary_id),
        "currency": ref(currency_id),
    }
    if account.tax_number:
        payload["vatRegNumber"] = account.tax_number
    if account.billing_address is not None:
        address = account.billing_address
        payload["addressBook"] = {
            "items": [
                {
                    "defaultBilling": True,
                    "defaultShipping": False,
                    "addressBookAddress": {
                        "addr1": address.street,
                        "city": address.city,
                        "zip": address.postal_code or "",
                        "state": address.region or "",
                        "country": {"id": address.country},
                    },
                }
            ]
        }
    return payload


def job_payload(*, project_id: str, project_name: str, customer_id: str) -> dict[str, Any]:
    """The project as a NetSuite job under the customer; invoices of the project name the job as entity."""
    return {
        "externalId": job_external_id(project_id),
        "companyName": project_name[:83],
        "parent": ref(customer_id),
    }


def job_external_id(project_id: str) -> str:
    return f"psa-project:{project_id}"


def _refuse_extra_places(invoice: Invoice) -> None:
    errors = [
        FieldError(
            field=f"item.items[{index}].{name}",
            message=f"{value} has more than the {places} decimal places ps-sync sends to NetSuite",
            code="rounding",
        )
        for index, line in enumerate(invoice.lines)
        for name, value, places in (
            ("quantity", line.quantity, QUANTITY_PLACES),
            ("rate", line.unit_price.amount, RATE_PLACES),
        )
        if places_of(value) > places
    ]
    if errors:
        raise Rejected(
            f"invoice {invoice.reference} has lines with more decimals than NetSuite is sent; rate them with "
            "the entity's rounding rule",
            system=SYSTEM,
            field_errors=errors,
        )


def invoice_payload(
    invoice: Invoice,
    *,
    external_id: str,
    entity_id: str,
    currency_id: str,
    item_ids: list[str],
    tax_ids: dict[str, str],
) -> dict[str, Any]:
    """`item_ids`: the item of each line, whose income account is the account the line books to."""
    _refuse_extra_places(invoice)
    return {
        "externalId": external_id,
        "entity": ref(entity_id),
        "tranDate": invoice.issue_date.isoformat(),
        "dueDate": invoice.due_date.isoformat(),
        "currency": ref(currency_id),
        REFERENCE_FIELD: invoice.reference,
        "memo": f"{invoice.project_id} {invoice.period}",
        "item": {
            "items": [
                {
                    "item": ref(item_id),
                    "description": line.description,
                    "quantity": line.quantity,
                    "rate": line.unit_price.amount,
                    # Sent so the booked line is the one we computed (see the module's note on rounding).
                    "amount": line.amount.amount,
                    "taxCode": ref(tax_ids[line.tax_code]),
                }
                for line, item_id in zip(invoice.lines, item_ids, strict=True)
            ]
        },
    }


def credit_nets(gross: Decimal, percent: Decimal, currency: str) -> list[Decimal]:
    """Net line amounts at one tax rate whose total with tax, rounded per line as NetSuite rounds it, is
    exactly `gross`.

    net + round(net x rate) climbs by one or two cents as net climbs by one, so `gross` itself may fall
    between two reachable totals; a second line of one minor unit (whose tax rounds to nothing below a 50 %
    rate) then makes up the last cent.
    """
    unit = Decimal(1).scaleb(-minor_units(currency))
    rate = percent / 100

    def with_tax(net: Decimal) -> Decimal:
        return net + round_cents(net * rate, currency)

    estimate = round_cents(gross / (1 + rate), currency)
    candidates = [estimate + unit * step for step in range(-3, 4)]
    for net in candidates:
        if net > 0 and with_tax(net) == gross:
            return [net]
    for net in candidates:
        if net > 0 and with_tax(net) + unit == gross and round_cents(unit * rate, currency) == 0:
            return [net, unit]
    raise Rejected(
        f"no credit of {gross} {currency} at {percent} % tax can be written as NetSuite lines",
        system=SYSTEM,
        field_errors=[FieldError(field="amount", message="not reachable at this tax rate")],
    )


def credit_memo_payload(
    invoice: dict[str, Any],
    amount: Money,
    *,
    external_id: str,
    reason: str,
    item_id: str,
    tax_id: str,
    tax_percent: Decimal,
) -> dict[str, Any]:
    nets = credit_nets(amount.amount, tax_percent, amount.currency)
    return {
        "externalId": external_id,
        "entity": invoice["entity"],
        "currency": invoice["currency"],
        "memo": reason,
        REFERENCE_FIELD: invoice.get(REFERENCE_FIELD) or "",
        "item": {
            "items": [
                {
                    "item": ref(item_id),
                    "description": reason,
                    "quantity": Decimal(1),
                    "rate": net,
                    "amount": net,
                    "taxCode": ref(tax_id),
                }
                for net in nets
            ]
        },
        "apply": {"items": [{"doc": ref(str(invoice["id"])), "apply": True, "amount": amount.amount}]},
    }


def payment_payload(
    invoice: dict[str, Any], amount: Money, *, external_id: str, reference: str, on: date
) -> dict[str, Any]:
    return {
        "externalId": external_id,
        "customer": invoice["entity"],
        "currency": invoice["currency"],
        "tranDate": on.isoformat(),
        "payment": amount.amount,
        "memo": reference,
        "apply": {"items": [{"doc": ref(str(invoice["id"])), "apply": True, "amount": amount.amount}]},
    }


# --- inbound ----------------------------------------------------------------------------------------------


def posted_invoice(record: dict[str, Any], currency: str) -> PostedInvoice:
    """`total` is the subtotal: the net total, the figure our Invoice.total is."""
    return PostedInvoice(
        erp=SYSTEM,
        invoice_id=str(record["id"]),
        number=str(record.get("tranId") or ""),
        total=money(record.get("subtotal"), currency),
        state=invoice_state(record),
    )


def erp_customer(row: dict[str, Any]) -> ErpCustomer:
    """A SuiteQL customer row; externalid is where ps-sync keeps the CRM account id."""
    return ErpCustomer(
        id=str(row["id"]),
        name=str(row.get("companyname") or ""),
        tax_number=row.get("vatregnumber") or None,
        external_ref=row.get("externalid") or None,
    )


def applied_to(record: dict[str, Any], invoice_id: str) -> Decimal | None:
    """What a payment or credit memo applies to the invoice, if it applies to it."""
    for line in sublist(record, "apply"):
        if line.get("apply") and ref_id(line.get("doc")) == invoice_id:
            return decimal(line.get("amount") or 0)
    return None


def payment(
    record: dict[str, Any], invoice_id: str, amount: Decimal, currency: str, *, shared: bool
) -> Payment:
    """A customer payment as it reaches one invoice; a payment spread over several invoices is one
    canonical Payment per invoice, told apart by the invoice id."""
    payment_id = str(record["id"])
    return Payment(
        id=f"{payment_id}:{invoice_id}" if shared else payment_id,
        invoice_id=invoice_id,
        amount=Money(amount=amount, currency=currency),
        date=date.fromisoformat(str(record["tranDate"])[:10]),
        reference=record.get("memo") or None,
    )


def payments(record: dict[str, Any], currency: str) -> list[Payment]:
    applied = [
        (str(ref_id(line.get("doc"))), decimal(line.get("amount") or 0))
        for line in sublist(record, "apply")
        if line.get("apply") and ref_id(line.get("doc"))
    ]
    shared = len(applied) > 1
    return [payment(record, invoice_id, amount, currency, shared=shared) for invoice_id, amount in applied]


def credit_note(record: dict[str, Any], invoice_id: str, amount: Decimal, currency: str) -> CreditNote:
    return CreditNote(
        id=str(record["id"]),
        invoice_id=invoice_id,
        amount=Money(amount=amount, currency=currency),
        date=date.fromisoformat(str(record["tranDate"])[:10]),
        number=record.get("tranId") or None,
    )


def invoice_status(
    record: dict[str, Any],
    currency: str,
    *,
    payments: tuple[Payment, ...],
    credit_notes: tuple[CreditNote, ...],
) -> InvoiceStatus:
    paid = sum((p.amount.amount for p in payments), Decimal(0))
    credited = sum((c.amount.amount for c in credit_notes), Decimal(0))
    return InvoiceStatus(
        erp=SYSTEM,
        invoice_id=str(record["id"]),
        number=str(record.get("tranId") or ""),
        state=invoice_state(record),
        total=money(record.get("total"), currency),
        amount_due=money(record.get("amountRemaining"), currency),
        amount_paid=Money(amount=paid, currency=currency),
        amount_credited=Money(amount=credited, currency=currency),
        due_date=date.fromisoformat(str(record["dueDate"])[:10]) if record.get("dueDate") else None,
        payments=payments,
        credit_notes=credit_notes,
    )
