"""Tryton's set-up and booked invoices as canonical reference records, read over JSON-RPC.

Rates: Tryton stores, per currency, how many units of it one unit of a common base buys (the company
currency has rate 1 in our books), so one unit of X is worth company.rate / X.rate in the company currency.
Inactive records are read too (`active_test: False`) so ReferenceSync can mark them inactive in the ledger.
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from canonical import Money
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
from connectors.tryton import analytic, documents, mapping
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"
RATE_PLACES = Decimal("1e-8")
_ALL = {"active_test": False}
LINE_FIELDS = ("id", "invoice", "description", "quantity", "amount", "type", "account", "analytic_accounts")


async def reference_data(rpc: TrytonRpc, books: TrytonBooks, *, today: date) -> ErpReferenceData:
    company = await books.company()
    (company_record,) = await rpc.read("company.company", [company], ["currency"])
    currencies = await rpc.search_read(
        "currency.currency", [], ["id", "code", "name", "rate"], context={"date": today}
    )
    base = next(c for c in currencies if c["id"] == company_record["currency"])
    taxes = await rpc.search_read(
        "account.tax",
        [("company", "=", company), ("parent", "=", None)],
        ["name", "description", "type", "rate", "active"],
        context=_ALL,
    )
    accounts = await rpc.search_read(
        "account.account",
        [("company", "=", company)],
        ["code", "name", "type", "closed", "active"],
        context=_ALL,
    )
    type_ids = sorted({a["type"] for a in accounts if a.get("type")})
    type_names = {t["id"]: t["name"] for t in await rpc.read("account.account.type", type_ids, ["name"])}
    products = await rpc.search_read(
        "product.template", [("salable", "=", True)], ["name", "active"], context=_ALL
    )
    return ErpReferenceData(
        erp=SYSTEM,
        base_currency=base["code"],
        as_of=today,
        currencies=tuple(
            CurrencyRate(code=c["code"], name=c.get("name"), rate=_in_base(base.get("rate"), c.get("rate")))
            for c in currencies
        ),
        tax_rates=tuple(
            TaxRate(
                code=t["name"],
                name=t.get("description") or t["name"],
                percent=(Decimal(t["rate"]) * 100).normalize(),
                active=bool(t.get("active", True)),
            )
            # A fixed-amount tax has no percentage; ps-sync never bills with one.
            for t in taxes
            if t.get("type") == "percentage" and t.get("rate") is not None
        ),
        accounts=tuple(
            LedgerAccount(
                code=a["code"],
                name=a["name"],
                type=type_names.get(a["type"], "view") if a.get("type") else "view",
                active=bool(a.get("active", True)) and not a.get("closed"),
            )
            for a in accounts
            if a.get("code")
        ),
        items=tuple(CatalogItem(code=p["name"][:64], name=p["name"]) for p in products),
    )


def _in_base(base_rate: Any, rate: Any) -> Decimal | None:
    if not base_rate or not rate:
        return None
    return (Decimal(base_rate) / Decimal(rate)).quantize(RATE_PLACES, rounding=ROUND_HALF_EVEN)


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


async def booked_invoices(rpc: TrytonRpc, books: TrytonBooks, reference_prefix: str) -> list[BookedInvoice]:
    """Customer invoices (not credit notes) whose reference starts with the prefix, with their lines."""
    if not reference_prefix:
        raise ValueError("a reference prefix is required: listing every invoice is not a reconciliation")
    company = await books.company()
    domain = [
        ("reference", "like", _like_prefix(reference_prefix)),
        ("type", "=", "out"),
        ("company", "=", company),
    ]
    records = [
        r
        for r in await documents.read_invoices(rpc, await rpc.search("account.invoice", domain))
        if r["total_amount"] >= 0
    ]
    line_ids = [line for r in records for line in r["lines"]]
    lines: dict[int, list[dict[str, Any]]] = {}
    for line in await rpc.read("account.invoice.line", line_ids, list(LINE_FIELDS)):
        if line.get("type", "line") == "line":
            lines.setdefault(line["invoice"], []).append(line)
    every_line = [line for found in lines.values() for line in found]
    accounts = {
        a["id"]: a["code"]
        for a in await rpc.read("account.account", sorted({ln["account"] for ln in every_line}), ["code"])
    }
    dimensions = await _dimensions(rpc, [e for ln in every_line for e in ln.get("analytic_accounts") or []])
    booked = []
    for record in records:
        currency = await books.currency_code(record["currency"])
        booked.append(
            BookedInvoice(
                erp=SYSTEM,
                invoice_id=str(record["id"]),
                number=record.get("number") or "",
                reference=record.get("reference") or "",
                state=mapping.invoice_state(record["state"]),
                net_total=Money(amount=record["untaxed_amount"], currency=currency),
                lines=tuple(
                    BookedLine(
                        description=line.get("description") or "",
                        quantity=Decimal(str(line["quantity"])),
                        amount=Money(amount=line["amount"], currency=currency),
                        account_code=accounts.get(line["account"]),
                        dimensions=tuple(
                            dimensions[e] for e in line.get("analytic_accounts") or [] if e in dimensions
                        ),
                    )
                    for line in sorted(lines.get(record["id"], []), key=lambda item: item["id"])
                ),
            )
        )
    return booked


async def _dimensions(rpc: TrytonRpc, entry_ids: list[int]) -> dict[int, DimensionValue]:
    """Analytic entry id -> the dimension value it books, for entries under ps-sync's roots."""
    entries = await rpc.read("analytic.account.entry", entry_ids, ["root", "account"])
    ids = sorted({e["root"] for e in entries} | {e["account"] for e in entries if e["account"]})
    accounts = {a["id"]: a for a in await rpc.read(analytic.MODEL, ids, ["code", "name"])}
    dimension_of = {code: dimension for dimension, (code, _) in analytic.ROOTS.items()}
    found: dict[int, DimensionValue] = {}
    for entry in entries:
        root, account = accounts.get(entry["root"]), accounts.get(entry["account"])
        dimension = dimension_of.get(root["code"]) if root else None
        if dimension is not None and account is not None and account["code"]:
            found[entry["id"]] = DimensionValue(
                dimension=dimension, code=account["code"], name=account["name"]
            )
    return found
