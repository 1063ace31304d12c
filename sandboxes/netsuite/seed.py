"""The account's set-up as a new US NetSuite account has it, enough for ps-sync: one subsidiary (the US
company, USD), its currencies, sales tax items, a service item and part of a chart of accounts."""

from __future__ import annotations

from typing import Any

from sandboxes.store import SandboxStore

SUBSIDIARY_ID = "1"

CURRENCIES: list[dict[str, Any]] = [
    {"id": "1", "symbol": "USD", "name": "US Dollar", "exchangeRate": "1.0", "isBaseCurrency": True},
    {"id": "2", "symbol": "GBP", "name": "British pound", "exchangeRate": "1.27", "isBaseCurrency": False},
    {"id": "3", "symbol": "CAD", "name": "Canadian Dollar", "exchangeRate": "0.73", "isBaseCurrency": False},
    {"id": "4", "symbol": "EUR", "name": "Euro", "exchangeRate": "1.08", "isBaseCurrency": False},
]

TAX_ITEMS: list[dict[str, Any]] = [
    {"id": "11", "itemId": "US-SALES-6", "rate": "6.00", "description": "Sales tax 6%"},
    {"id": "12", "itemId": "US-EXEMPT", "rate": "0.00", "description": "Not taxable"},
    {"id": "13", "itemId": "US-SALES-8.25", "rate": "8.25", "description": "Sales tax 8.25%"},
]

# A service item books its sales to its income account: NetSuite has no account field on an invoice line.
ITEMS: list[dict[str, Any]] = [
    {
        "id": "21",
        "itemId": "Consulting",
        "displayName": "Consulting services",
        "itemType": "Service",
        "incomeAccount": {"id": "105"},
    },
    {
        "id": "22",
        "itemId": "Expenses",
        "displayName": "Expenses re-billed",
        "itemType": "Service",
        "incomeAccount": {"id": "106"},
    },
    {
        "id": "23",
        "itemId": "Advisory",
        "displayName": "Advisory retainer",
        "itemType": "Service",
        "incomeAccount": {"id": "107"},
    },
]

ACCOUNTS: list[dict[str, Any]] = [
    {"id": "101", "acctNumber": "1000", "acctName": "Operating Bank", "acctType": "Bank"},
    {"id": "102", "acctNumber": "1100", "acctName": "Accounts Receivable", "acctType": "AcctRec"},
    {"id": "103", "acctNumber": "1200", "acctName": "Undeposited Funds", "acctType": "OthCurrAsset"},
    {"id": "104", "acctNumber": "2200", "acctName": "Sales Tax Payable", "acctType": "OthCurrLiab"},
    {"id": "105", "acctNumber": "4000", "acctName": "Consulting Revenue", "acctType": "Income"},
    {"id": "106", "acctNumber": "4100", "acctName": "Reimbursed Expenses", "acctType": "Income"},
    {"id": "107", "acctNumber": "4200", "acctName": "Advisory Revenue", "acctType": "Income"},
]


def seed(store: SandboxStore, *, company_name: str, base_currency: str) -> None:
    """Idempotent: fixed ids, so a restart over a persisted store writes the same records again."""
    base = next(c for c in CURRENCIES if c["symbol"] == base_currency)
    store.collection("subsidiary").put(
        SUBSIDIARY_ID,
        {
            "id": SUBSIDIARY_ID,
            "name": company_name,
            "currency": {"id": base["id"]},
            "country": {"id": "US"},
            "isInactive": False,
        },
    )
    store.collection("currency").put_many(
        (c["id"], {**c, "isBaseCurrency": c["symbol"] == base_currency, "isInactive": False})
        for c in CURRENCIES
    )
    store.collection("salesTaxItem").put_many((t["id"], {**t, "isInactive": False}) for t in TAX_ITEMS)
    store.collection("item").put_many((i["id"], {**i, "isInactive": False}) for i in ITEMS)
    store.collection("account").put_many((a["id"], {**a, "isInactive": False}) for a in ACCOUNTS)
