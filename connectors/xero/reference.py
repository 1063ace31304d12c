"""Xero's set-up and booked invoices as canonical reference records (developer.xero.com/documentation/api/
accounting: Organisation, Currencies, TaxRates, Accounts, Items, Invoices).

Xero publishes no exchange rates (it applies xe.com's rate of the day to each foreign-currency document), so
only the base currency carries a rate (1); the other enabled currencies are listed without one.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from canonical.dimensions import DimensionValue
from canonical.reference import (
    BookedInvoice,
    BookedLine,
    CatalogItem,
    CurrencyRate,
    ErpReferenceData,
    LedgerAccount,
    TaxRate,
)
from connectors.xero.mapping import ERP, TRACKING_CATEGORIES, invoice_state, money

# Xero's statuses for tax rates and accounts; anything but ACTIVE cannot be used on a new document.
_ACTIVE = "ACTIVE"


def reference_data(
    *,
    organisation: dict[str, Any],
    currencies: list[dict[str, Any]],
    tax_rates: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    items: list[dict[str, Any]],
    today: date,
) -> ErpReferenceData:
    base = str(organisation["BaseCurrency"])
    return ErpReferenceData(
        erp=ERP,
        base_currency=base,
        as_of=today,
        currencies=tuple(
            CurrencyRate(
                code=doc["Code"],
                name=doc.get("Description") or None,
                rate=Decimal(1) if doc["Code"] == base else None,
            )
            for doc in currencies
        ),
        tax_rates=tuple(
            TaxRate(
                code=doc["TaxType"],
                name=doc.get("Name") or doc["TaxType"],
                percent=_number(doc.get("EffectiveRate", doc.get("DisplayTaxRate", 0))),
                active=doc.get("Status") == _ACTIVE,
            )
            for doc in tax_rates
            if doc.get("TaxType")
        ),
        accounts=tuple(
            LedgerAccount(
                code=doc["Code"],
                name=doc.get("Name") or doc["Code"],
                type=doc.get("Type") or "UNKNOWN",
                active=doc.get("Status") == _ACTIVE,
            )
            # Bank accounts may have no code; nothing can reference them by one.
            for doc in accounts
            if doc.get("Code")
        ),
        items=tuple(
            CatalogItem(code=doc["Code"], name=doc.get("Name") or doc["Code"])
            for doc in items
            if doc.get("Code")
        ),
    )


def booked_invoice(doc: dict[str, Any]) -> BookedInvoice:
    """A sales invoice read with its line items (Xero includes them only on paged or single reads)."""
    currency = doc["CurrencyCode"]
    return BookedInvoice(
        erp=ERP,
        invoice_id=doc["InvoiceID"],
        number=doc.get("InvoiceNumber") or "",
        reference=doc.get("Reference") or "",
        state=invoice_state(doc["Status"]),
        net_total=money(doc.get("SubTotal"), currency),
        lines=tuple(
            BookedLine(
                description=line.get("Description") or "",
                quantity=_number(line.get("Quantity", 0)),
                # Sent with LineAmountTypes Exclusive, so LineAmount is the net line amount.
                amount=money(line.get("LineAmount"), currency),
                account_code=line.get("AccountCode") or None,
                dimensions=booked_dimensions(line.get("Tracking") or []),
            )
            for line in doc.get("LineItems") or []
        ),
    )


def booked_dimensions(tracking: list[dict[str, Any]]) -> tuple[DimensionValue, ...]:
    """The line's tracking in canonical dimensions; categories other than ps-sync's are not dimensions."""
    by_category = {name.lower(): dimension for dimension, name in TRACKING_CATEGORIES.items()}
    return tuple(
        DimensionValue(dimension=by_category[str(t["Name"]).lower()], code=t["Option"], name=t["Option"])
        for t in tracking
        if str(t.get("Name", "")).lower() in by_category and t.get("Option")
    )


def _number(value: Any) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ValueError(f"expected a number from Xero, got {value!r}")
    return Decimal(value)
