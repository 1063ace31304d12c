"""Records as the record API returns them: `links`, references with their `refName`, amounts as numbers,
sublists expanded (`expandSubResources=true`) or as links to their own resource."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sandboxes.netsuite.books import SUBLISTS, NetSuiteBooks

RECORD_PATH = "/services/rest/record/v1"
NUMBERS = frozenset(
    {
        "quantity",
        "rate",
        "amount",
        "subtotal",
        "taxTotal",
        "total",
        "amountPaid",
        "amountRemaining",
        "payment",
        "applied",
        "unapplied",
        "exchangeRate",
        "taxRate1",
        "tax1Amt",
    }
)
# Which record a reference field points at, for its refName.
_REFERENCED = {
    "currency": ("currency", "name"),
    "subsidiary": ("subsidiary", "name"),
    "taxCode": ("salesTaxItem", "itemId"),
    "item": ("item", "itemId"),
}


def _ref_name(books: NetSuiteBooks, field: str, ref_id: str) -> str | None:
    if field in ("entity", "customer", "parent"):
        for record_type in ("customer", "job"):
            doc = books.records(record_type).get(ref_id)
            if doc is not None:
                return str(doc.get("entityId") or doc.get("companyName"))
        return None
    if field == "doc":
        doc = books.records("invoice").get(ref_id)
        return str(doc["tranId"]) if doc else None
    target = _REFERENCED.get(field)
    if target is None:
        return None
    doc = books.records(target[0]).get(ref_id)
    return str(doc.get(target[1])) if doc else None


def _value(books: NetSuiteBooks, field: str, value: Any, base: str) -> Any:
    if isinstance(value, dict) and set(value) == {"id"}:
        name = _ref_name(books, field, str(value["id"]))
        return {"id": str(value["id"]), **({"refName": name} if name is not None else {})}
    if isinstance(value, dict):
        return {key: _value(books, key, item, base) for key, item in value.items()}
    if field in NUMBERS and value not in (None, ""):
        return Decimal(str(value))
    return value


def record(
    books: NetSuiteBooks, record_type: str, doc: dict[str, Any], *, expand: bool, base: str
) -> dict[str, Any]:
    self_url = f"{base}{RECORD_PATH}/{record_type}/{doc['id']}"
    out: dict[str, Any] = {"links": [{"rel": "self", "href": self_url}]}
    for field, value in doc.items():
        if field.startswith("_"):
            continue
        if field in SUBLISTS and isinstance(value, dict):
            if expand:
                lines = [
                    {"links": [], **{key: _value(books, key, item, base) for key, item in line.items()}}
                    for line in value.get("items", [])
                ]
                out[field] = {
                    "links": [{"rel": "self", "href": f"{self_url}/{field}"}],
                    "items": lines,
                    "totalResults": len(lines),
                    "count": len(lines),
                    "hasMore": False,
                    "offset": 0,
                }
            else:
                out[field] = {"links": [{"rel": "self", "href": f"{self_url}/{field}"}]}
            continue
        out[field] = _value(books, field, value, base)
    return out
