"""Stored documents as Xero writes them on the wire: numbers as JSON numbers, dates as `/Date(…)/`."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandboxes.xero.dates import net_json, net_json_day

_AMOUNTS = frozenset(
    {
        "Quantity",
        "UnitAmount",
        "TaxAmount",
        "LineAmount",
        "SubTotal",
        "TotalTax",
        "Total",
        "AmountDue",
        "AmountPaid",
        "AmountCredited",
        "Amount",
        "AppliedAmount",
        "RemainingCredit",
        "CurrencyRate",
        "Rate",
        "DisplayTaxRate",
        "EffectiveRate",
        "UnitPrice",
        "BankAmount",
    }
)
_DATES = frozenset({"Date", "DueDate", "FullyPaidOnDate"})
_DATE_STRINGS = {"Date": "DateString", "DueDate": "DueDateString"}


def wire(value: Any) -> Any:
    """Convert a stored document (amounts as strings, dates ISO, times in ms) to Xero's JSON shapes."""
    if isinstance(value, list):
        return [wire(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if item is None:
            continue  # Xero leaves unset fields out rather than sending null
        if key in _AMOUNTS and isinstance(item, str):
            out[key] = Decimal(item)
        elif key in _DATES and isinstance(item, str):
            out[key] = net_json_day(date.fromisoformat(item))
            if key in _DATE_STRINGS:
                out[_DATE_STRINGS[key]] = f"{item}T00:00:00"
        elif key == "UpdatedDateUTC" and isinstance(item, int):
            out[key] = net_json(item)
            moment = datetime.fromtimestamp(item / 1000, tz=UTC)
            out["UpdatedDateUTCString"] = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            out[key] = wire(item)
    return out
