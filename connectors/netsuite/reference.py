"""The account's set-up and booked invoices as canonical reference records (ReferenceSync, Reconciliation).

Read with SuiteQL from the analytics tables `currency`, `salestaxitem`, `account` and `item`, and the
subsidiary's base currency from its record. NetSuite keeps an exchange rate on each currency (to the root
subsidiary's currency); it is passed on as the currency's rate.
"""

from __future__ import annotations

from datetime import date
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
from connectors.netsuite.errors import SYSTEM
from connectors.netsuite.mapping import REFERENCE_FIELD, invoice_state, money, sublist
from connectors.netsuite.wire import decimal


def _active(row: dict[str, Any]) -> bool:
    return str(row.get("isinactive", "F")) != "T"


def reference_data(
    *,
    base_currency: str,
    currencies: list[dict[str, Any]],
    tax_codes: list[dict[str, Any]],
    accounts: list[dict[str, Any]],
    items: list[dict[str, Any]],
    today: date,
) -> ErpReferenceData:
    return ErpReferenceData(
        erp=SYSTEM,
        base_currency=base_currency,
        as_of=today,
        currencies=tuple(
            CurrencyRate(
                code=str(row["symbol"]).upper(),
                name=row.get("name") or None,
                rate=decimal(row["exchangerate"]) if row.get("exchangerate") not in (None, "") else None,
            )
            for row in currencies
            if _active(row)
        ),
        tax_rates=tuple(
            TaxRate(
                code=str(row["itemid"]),
                name=str(row.get("description") or row["itemid"]),
                percent=decimal(row.get("rate") or "0"),
                active=_active(row),
            )
            for row in tax_codes
        ),
        accounts=tuple(
            LedgerAccount(
                code=str(row["acctnumber"]),
                name=str(row.get("accountsearchdisplayname") or row["acctnumber"]),
                type=str(row.get("accttype") or "UNKNOWN"),
                active=_active(row),
            )
            # Accounts without a number cannot be referenced by one.
            for row in accounts
            if row.get("acctnumber")
        ),
        items=tuple(
            CatalogItem(code=str(row["itemid"]), name=str(row.get("displayname") or row["itemid"]))
            for row in items
            if _active(row) and row.get("itemid")
        ),
    )


def booked_invoice(
    record: dict[str, Any],
    currency: str,
    *,
    accounts: list[str | None],
    dimensions: tuple[DimensionValue, ...],
) -> BookedInvoice:
    """An invoice read with its item lines expanded; `accounts` are the lines' items' income accounts, and
    every line carries the invoice's `dimensions` (its Customer:Project)."""
    return BookedInvoice(
        erp=SYSTEM,
        invoice_id=str(record["id"]),
        number=str(record.get("tranId") or ""),
        reference=str(record.get(REFERENCE_FIELD) or ""),
        state=invoice_state(record),
        net_total=money(record.get("subtotal"), currency),
        lines=tuple(
            BookedLine(
                description=str(line.get("description") or ""),
                quantity=decimal(line.get("quantity") or 0),
                amount=money(line.get("amount"), currency),
                account_code=account,
                dimensions=dimensions,
            )
            for line, account in zip(sublist(record, "item"), accounts, strict=True)
        ),
    )
