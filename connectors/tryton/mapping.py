"""Canonical models to Tryton values and back. Pure functions: no I/O, ids are resolved by the caller.

Where our keys live in Tryton (it has no idempotency header, so every document carries its key):
- customer: `party.party.code` = CRM account id (Tryton keeps party codes unique);
- invoice and credit note: `account.invoice.description` = our idempotency key, `reference` = our business
  reference (credit notes: the credited invoice's number), `comment` = a credit's reason;
- payment: the payment move's `description` = "<reference> [<idempotency key>]" (the pay wizard has one text);
- project: `project.work.comment` = "ps-sync external ref: <ref>";
- project and customer dimensions: analytic accounts coded with the PSA project id and the CRM account id,
  under the analytic roots `PROJECT` and `CUSTOMER` (connectors.tryton.analytic).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from canonical import (
    Account,
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceState,
    InvoiceStatus,
    Money,
    Payment,
    PostedInvoice,
)
from canonical.money import places_of
from connectors.errors import FieldError, Rejected

SYSTEM = "tryton"

_STATES = {
    "draft": InvoiceState.DRAFT,
    "validated": InvoiceState.DRAFT,
    "posted": InvoiceState.AWAITING_PAYMENT,
    "paid": InvoiceState.PAID,
    "cancelled": InvoiceState.VOIDED,
}

_PAYMENT_DESCRIPTION = re.compile(r"^(?P<reference>.*) \[(?P<key>[^\[\]]+)\]$", re.S)
PROJECT_REF_PREFIX = "ps-sync external ref: "


def invoice_state(tryton_state: str) -> InvoiceState:
    try:
        return _STATES[tryton_state]
    except KeyError:
        raise ValueError(f"unknown Tryton invoice state {tryton_state!r}") from None


def tryton_id(value: str, *, what: str) -> int:
    """Our string id back to Tryton's integer id; ValueError when it cannot be one (callers say NotFound)."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} id must be a Tryton integer id, got {value!r}") from None
    if number <= 0:
        raise ValueError(f"{what} id must be positive, got {value!r}")
    return number


# A float carries any decimal of up to 15 significant digits exactly through its shortest repr.
FLOAT_EXACT_DIGITS = 15


def line_quantity(quantity: Decimal, *, digits: int, field: str) -> Decimal:
    """An invoice line quantity as Tryton stores it, or Rejected naming the line.

    Tryton's quantity is a Float field with its unit's digits: it refuses a value with more decimals
    (DigitsValidationError) and computes the line amount as currency.round(Decimal(str(quantity)) x
    unit_price). Rating rounds quantities to the entity's quantity places before pricing, so a quantity
    within the unit's digits is sent as the Decimal it is (JSON-RPC {"__class__": "Decimal"}; the Float field
    stores float(value), whose str is that decimal again) and Tryton's amount is ours by construction.
    """
    if places_of(quantity) > digits or len(quantity.normalize().as_tuple().digits) > FLOAT_EXACT_DIGITS:
        raise Rejected(
            f"quantity {quantity} cannot be stored exactly by Tryton: the line's unit keeps {digits} "
            "decimals (the entity's quantity places must not exceed them) and quantities are floats",
            system=SYSTEM,
            field_errors=[FieldError(field=field, message=f"more than {digits} decimal places")],
        )
    return quantity


# -- customers ---------------------------------------------------------------------------------------------


def party_values(account: Account, *, country_id: int | None) -> dict[str, Any]:
    address: dict[str, Any] = {}
    if account.billing_address is not None:
        billing = account.billing_address
        address = {
            "street": billing.street,
            "city": billing.city,
            "postal_code": billing.postal_code,
            "country": country_id,
        }
    values: dict[str, Any] = {
        "name": account.name,
        "code": account.id,
        # An invoice needs an invoice address, so a customer always gets one, even if the CRM had none.
        "addresses": [["create", [address]]],
    }
    if account.tax_number:
        # Tryton validates EU VAT numbers itself and refuses invalid ones with its own message.
        values["identifiers"] = [["create", [{"type": "eu_vat", "code": account.tax_number}]]]
    return values


# -- invoices ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineRefs:
    """The Tryton ids one invoice line needs."""

    product: int
    unit: int
    account: int
    tax: int


@dataclass(frozen=True)
class InvoiceRefs:
    company: int
    party: int
    invoice_address: int
    currency: int
    receivable: int
    journal: int
    payment_term: int | None


def invoice_line_values(
    line: InvoiceLine,
    index: int,
    refs: LineRefs,
    invoice_refs: InvoiceRefs,
    *,
    unit_digits: int,
    origin: str | None = None,
    quantity: Decimal | None = None,
    unit_price: Decimal | None = None,
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "type": "line",
        "invoice_type": "out",
        "company": invoice_refs.company,
        "currency": invoice_refs.currency,
        "party": invoice_refs.party,
        "product": refs.product,
        "unit": refs.unit,
        "account": refs.account,
        "description": line.description,
        "quantity": line_quantity(
            line.quantity if quantity is None else quantity,
            digits=unit_digits,
            field=f"lines[{index}].quantity",
        ),
        # Decimal goes over the wire as {"__class__": "Decimal", "decimal": "123.33"}: exact.
        "unit_price": line.unit_price.amount if unit_price is None else unit_price,
        "taxes": [["add", [refs.tax]]],
    }
    if origin:
        values["origin"] = origin
    return values


def invoice_values(
    invoice: Invoice, *, idempotency_key: str, refs: InvoiceRefs, lines: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "type": "out",
        "company": refs.company,
        "party": refs.party,
        "invoice_address": refs.invoice_address,
        "currency": refs.currency,
        "account": refs.receivable,
        "journal": refs.journal,
        "payment_term": refs.payment_term,
        "invoice_date": invoice.issue_date,
        "reference": invoice.reference,
        "description": idempotency_key,
        "lines": [["create", list(lines)]],
    }


def posted_invoice(record: Mapping[str, Any], currency: str) -> PostedInvoice:
    return PostedInvoice(
        erp=SYSTEM,
        invoice_id=str(record["id"]),
        number=record.get("number") or "",
        total=Money(amount=record["untaxed_amount"], currency=currency),
        state=invoice_state(record["state"]),
    )


# -- payments and credits ----------------------------------------------------------------------------------


def payment_description(reference: str, idempotency_key: str) -> str:
    if "[" in idempotency_key or "]" in idempotency_key:
        raise Rejected(
            "an idempotency key for Tryton must not contain square brackets",
            system=SYSTEM,
            field_errors=[FieldError(field="idempotency_key", message="contains [ or ]")],
        )
    return f"{reference} [{idempotency_key}]"


def split_payment_description(text: str | None) -> tuple[str | None, str | None]:
    """(reference, idempotency key) from a payment move's description; no key for foreign payments."""
    if not text:
        return None, None
    match = _PAYMENT_DESCRIPTION.match(text)
    if not match:
        return text, None
    return match["reference"], match["key"]


def line_amount(line: Mapping[str, Any], invoice_currency_id: int) -> Decimal:
    """A receivable move line's value in the invoice currency, positive when it reduces what is owed.

    Move lines hold company-currency debit/credit; a foreign-currency invoice's lines also carry the
    amount in that currency as `amount_second_currency`.
    """
    if line.get("second_currency") == invoice_currency_id and line.get("amount_second_currency") is not None:
        return -Decimal(line["amount_second_currency"])
    return Decimal(line["credit"]) - Decimal(line["debit"])


def payment_from_line(
    line: Mapping[str, Any],
    *,
    invoice_id: int,
    currency: str,
    invoice_currency_id: int,
    move_description: str | None,
) -> Payment:
    reference, _key = split_payment_description(move_description)
    return Payment(
        id=str(line["id"]),
        invoice_id=str(invoice_id),
        amount=Money(amount=line_amount(line, invoice_currency_id), currency=currency),
        date=line["date"],
        reference=reference,
    )


def credit_note_from(
    credit: Mapping[str, Any], *, invoice_id: int, currency: str, amount: Decimal
) -> CreditNote:
    credit_date: date = credit.get("invoice_date") or credit["create_date"].date()
    return CreditNote(
        id=str(credit["id"]),
        invoice_id=str(invoice_id),
        amount=Money(amount=amount, currency=currency),
        date=credit_date,
        number=credit.get("number") or None,
    )


def invoice_status(
    record: Mapping[str, Any],
    *,
    currency: str,
    due_date: date | None,
    payments: Sequence[Payment],
    credit_notes: Sequence[CreditNote],
) -> InvoiceStatus:
    state = invoice_state(record["state"])
    total = Money(amount=record["total_amount"], currency=currency)
    paid = sum((p.amount for p in payments), Money.zero(currency))
    credited = sum((c.amount for c in credit_notes), Money.zero(currency))
    if record["state"] == "posted":
        due = Money(amount=record["amount_to_pay"], currency=currency)
    elif record["state"] in ("draft", "validated"):
        due = total
    else:
        due = Money.zero(currency)
    return InvoiceStatus(
        erp=SYSTEM,
        invoice_id=str(record["id"]),
        number=record.get("number") or "",
        state=state,
        total=total,
        amount_due=due,
        amount_paid=paid,
        amount_credited=credited,
        due_date=due_date,
        payments=tuple(payments),
        credit_notes=tuple(credit_notes),
    )
