"""The SuiteQL tables the sandbox offers, as rows built from its records (column names as NetSuite's
Records Catalog spells them, in lower case)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sandboxes.netsuite.books import TRANSACTION_TYPES, NetSuiteBooks, amount_of, ref_of

Row = dict[str, Any]


def _stamp(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(UTC)


def _day(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _flag(value: Any) -> str:
    return "T" if value else "F"


def customers(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("customer"):
        yield {
            "id": str(doc["id"]),
            "entityid": doc.get("entityId"),
            "companyname": doc.get("companyName"),
            "externalid": doc.get("externalId"),
            "vatregnumber": doc.get("vatRegNumber"),
            "email": doc.get("email"),
            "currency": ref_of(doc.get("currency")),
            "subsidiary": ref_of(doc.get("subsidiary")),
            "isinactive": _flag(doc.get("isInactive")),
            "datecreated": _stamp(doc.get("createdDate")),
            "lastmodifieddate": _stamp(doc.get("lastModifiedDate")),
        }


def jobs(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("job"):
        yield {
            "id": str(doc["id"]),
            "entityid": doc.get("entityId"),
            "companyname": doc.get("companyName"),
            "externalid": doc.get("externalId"),
            "parent": ref_of(doc.get("parent")),
            "isinactive": _flag(doc.get("isInactive")),
        }


def transactions(books: NetSuiteBooks) -> Iterator[Row]:
    for record_type, type_code in TRANSACTION_TYPES.items():
        for doc in books.records(record_type):
            view = books.invoice_view(doc) if record_type == "invoice" else doc
            total = amount_of(view, "payment" if record_type == "customerPayment" else "total")
            yield {
                "id": str(doc["id"]),
                "tranid": doc.get("tranId"),
                "type": type_code,
                "entity": ref_of(doc.get("entity") or doc.get("customer")),
                "trandate": _day(doc.get("tranDate")),
                "duedate": _day(doc.get("dueDate")),
                "otherrefnum": doc.get("otherRefNum") or None,
                "memo": doc.get("memo") or None,
                "status": (view.get("status") or {}).get("id"),
                "foreigntotal": total,
                "currency": ref_of(doc.get("currency")),
                "externalid": doc.get("externalId"),
                "voided": _flag(doc.get("_voided")),
                "createddate": _stamp(doc.get("createdDate")),
                "lastmodifieddate": _stamp(doc.get("lastModifiedDate")),
            }


def currencies(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("currency"):
        yield {
            "id": str(doc["id"]),
            "symbol": doc["symbol"],
            "name": doc["name"],
            "exchangerate": Decimal(str(doc["exchangeRate"])),
            "isbasecurrency": _flag(doc.get("isBaseCurrency")),
            "isinactive": _flag(doc.get("isInactive")),
        }


def subsidiaries(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("subsidiary"):
        yield {
            "id": str(doc["id"]),
            "name": doc["name"],
            "currency": ref_of(doc.get("currency")),
            "country": ref_of(doc.get("country")),
            "isinactive": _flag(doc.get("isInactive")),
        }


def tax_items(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("salesTaxItem"):
        yield {
            "id": str(doc["id"]),
            "itemid": doc["itemId"],
            # The analytics data source shows a tax rate as a percentage text.
            "rate": f"{Decimal(str(doc['rate'])):.2f}%",
            "description": doc.get("description"),
            "isinactive": _flag(doc.get("isInactive")),
        }


def items(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("item"):
        yield {
            "id": str(doc["id"]),
            "itemid": doc["itemId"],
            "displayname": doc.get("displayName"),
            "itemtype": doc.get("itemType"),
            "incomeaccount": ref_of(doc.get("incomeAccount")),
            "isinactive": _flag(doc.get("isInactive")),
        }


def accounts(books: NetSuiteBooks) -> Iterator[Row]:
    for doc in books.records("account"):
        yield {
            "id": str(doc["id"]),
            "acctnumber": doc.get("acctNumber"),
            "accountsearchdisplayname": f"{doc.get('acctNumber')} {doc.get('acctName')}",
            "accttype": doc.get("acctType"),
            "isinactive": _flag(doc.get("isInactive")),
        }


def links(books: NetSuiteBooks) -> Iterator[Row]:
    return books.links()


TABLES: dict[str, Callable[[NetSuiteBooks], Iterator[Row]]] = {
    "customer": customers,
    "job": jobs,
    "transaction": transactions,
    "currency": currencies,
    "subsidiary": subsidiaries,
    "salestaxitem": tax_items,
    "item": items,
    "account": accounts,
    "nexttransactionlinelink": links,
}
