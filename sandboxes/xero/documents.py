"""How Xero reads the numbers, dates and line items of invoices and credit notes, and totals them.

Line amounts are rounded per line and tax is computed per line (developer.xero.com/documentation/api/
accounting/invoices, "LineAmountTypes"): Exclusive adds tax on top of each rounded line amount,
Inclusive takes it out of the line, NoTax has none. Without `unitdp=4` Xero keeps unit amounts to two
decimal places, so a client that sends 0.335 without opting in is billed 0.34.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sandboxes.xero.dates import parse_request_date

CENT = Decimal("0.01")
# A line item's Tracking -> (as stored, validation errors): see tracking.Tracking.for_line.
TrackingLookup = Callable[[Any], tuple[list[dict[str, Any]], list[str]]]
LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")


def money(value: Decimal) -> str:
    return format(value.quantize(CENT, rounding=ROUND_HALF_UP), "f")


def amount(doc: dict[str, Any], key: str) -> Decimal:
    """A stored amount (kept as a string so it survives the JSON round trip to SQLite exactly)."""
    value = doc.get(key)
    return Decimal(str(value)) if value not in (None, "") else Decimal(0)


def number(value: Any) -> Decimal | None:
    """A JSON number as Xero accepts it; None when the value is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return None


def parse_date(value: Any) -> date | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_request_date(value)
    except ValueError:
        return None


def today() -> date:
    return datetime.now(UTC).date()


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


@dataclass
class Lines:
    items: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sub_total: Decimal = Decimal(0)
    total_tax: Decimal = Decimal(0)

    @property
    def total(self) -> Decimal:
        return self.sub_total + self.total_tax


@dataclass(frozen=True)
class Chart:
    """The organisation's chart, as line validation needs it."""

    accounts: dict[str, dict[str, Any]]
    tax_rates: dict[str, dict[str, Any]]
    items: dict[str, dict[str, Any]]


def read_lines(
    raw_lines: Any,
    *,
    sales: bool,
    line_amount_types: str,
    unitdp: int | None,
    approved: bool,
    chart: Chart,
    tracking: TrackingLookup | None = None,
) -> Lines:
    lines = Lines()
    if raw_lines is None:
        raw_lines = []
    if not isinstance(raw_lines, list):
        lines.errors.append("LineItems must be a list of line items.")
        return lines
    if approved and not raw_lines:
        lines.errors.append("At least one line item must be specified for an approved document.")
    unit_places = Decimal("0.0001") if unitdp == 4 else CENT
    for raw in raw_lines:
        if not isinstance(raw, dict):
            lines.errors.append("Each line item must be an object.")
            continue
        item = chart.items.get(raw["ItemCode"]) if isinstance(raw.get("ItemCode"), str) else None
        if raw.get("ItemCode") is not None and item is None:
            lines.errors.append(f"Item code '{raw.get('ItemCode')}' is not valid.")
        details = (item or {}).get("SalesDetails" if sales else "PurchaseDetails") or {}
        description = raw.get("Description") or (item or {}).get("Description")
        quantity = number(raw.get("Quantity", 1))
        unit_amount = number(raw.get("UnitAmount", details.get("UnitPrice", 0)))
        if quantity is None:
            lines.errors.append("Quantity must be a number.")
        if unit_amount is None:
            lines.errors.append("UnitAmount must be a number.")
        if not description:
            lines.errors.append("Description needs to be specified for all line items.")
        account_code = raw.get("AccountCode") or details.get("AccountCode")
        account = chart.accounts.get(account_code) if isinstance(account_code, str) else None
        if account_code is None:
            if approved:
                lines.errors.append(
                    "Account code must be specified for all line items of an approved document."
                )
        elif (
            account is None
            or account["Status"] != "ACTIVE"
            or account["Type"] == "BANK"
            or account["SystemAccount"]
        ):
            lines.errors.append(f"Account code '{account_code}' is not a valid code for this document.")
        tax_type = raw.get("TaxType") or details.get("TaxType") or (account or {}).get("TaxType")
        if line_amount_types == "NoTax":
            tax_type = "NONE"
        rate_doc = chart.tax_rates.get(tax_type) if isinstance(tax_type, str) else None
        usable = (
            rate_doc is not None
            and rate_doc["Status"] == "ACTIVE"
            and (rate_doc["CanApplyToRevenue"] if sales else rate_doc["CanApplyToExpenses"])
        )
        if tax_type is not None and not usable:
            lines.errors.append(
                f"The TaxType code '{tax_type}' does not exist or cannot be used for this type of "
                "transaction."
            )
        tracked, tracking_errors = tracking(raw.get("Tracking")) if tracking is not None else ([], [])
        lines.errors.extend(tracking_errors)
        if quantity is None or unit_amount is None:
            continue
        quantity = quantity.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        unit_amount = unit_amount.quantize(unit_places, rounding=ROUND_HALF_UP)
        line_amount = (quantity * unit_amount).quantize(CENT, rounding=ROUND_HALF_UP)
        rate = Decimal(str(rate_doc["EffectiveRate"])) if usable and rate_doc else Decimal(0)
        if line_amount_types == "Exclusive":
            tax = (line_amount * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
            net = line_amount
        elif line_amount_types == "Inclusive":
            tax = (line_amount * rate / (100 + rate)).quantize(CENT, rounding=ROUND_HALF_UP)
            net = line_amount - tax
        else:
            tax, net = Decimal(0), line_amount
        lines.sub_total += net
        lines.total_tax += tax
        line: dict[str, Any] = {
            "LineItemID": str(uuid.uuid4()),
            "Description": description,
            "Quantity": format(quantity, "f"),
            "UnitAmount": format(unit_amount, "f"),
            "AccountCode": account_code,
            "TaxType": tax_type,
            "TaxAmount": money(tax),
            "LineAmount": money(line_amount),
        }
        if item is not None:
            line["ItemCode"] = item["Code"]
        line["Tracking"] = tracked
        lines.items.append(line)
    return lines
