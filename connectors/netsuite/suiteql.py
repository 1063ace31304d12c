"""The SuiteQL ps-sync sends: a handful of look-ups, with every value quoted as a literal.

SuiteQL is SQL-92 on NetSuite's analytics data source (table and column names from the Records Catalog,
lower case in results). Values are written as literals because REST SuiteQL takes no bind parameters;
a string literal doubles its single quotes, and ids are checked to be digits before they are written.
Booleans are 'T'/'F'. Timestamps are compared with TO_TIMESTAMP in the account's time zone: ps-sync
assumes the integration role's time zone is UTC (NetSuite Setup > Preferences), which could not be
confirmed from NetSuite's documentation for REST SuiteQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

INVOICE = "CustInvc"
PAYMENT = "CustPymt"
CREDIT_MEMO = "CustCred"


def text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def internal_id(value: str) -> str:
    if not value.isdigit():
        raise ValueError(f"{value!r} is not a NetSuite internal id")
    return value


def ids(values: Iterable[str]) -> str:
    return "(" + ", ".join(internal_id(value) for value in values) + ")"


def timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("SuiteQL timestamps are compared in UTC: pass an aware datetime")
    stamp = moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"TO_TIMESTAMP('{stamp}', 'YYYY-MM-DD HH24:MI:SS')"


def like_prefix(prefix: str) -> str:
    """A LIKE pattern for values starting with `prefix`; a prefix holding a wildcard is refused, not escaped,
    because SuiteQL's LIKE escape syntax is not documented."""
    if any(ch in prefix for ch in "%_"):
        raise ValueError(f"a reference prefix cannot hold SQL wildcards: {prefix!r}")
    return text(prefix + "%")


def invoices_with_reference(reference: str) -> str:
    return (
        f"SELECT id FROM transaction WHERE type = '{INVOICE}' AND otherrefnum = {text(reference)} ORDER BY id"
    )


def invoices_with_reference_prefix(prefix: str) -> str:
    return (
        f"SELECT id FROM transaction WHERE type = '{INVOICE}' AND otherrefnum LIKE {like_prefix(prefix)} "
        "ORDER BY id"
    )


def payments_modified_since(moment: datetime | None) -> str:
    since = f" AND lastmodifieddate >= {timestamp(moment)}" if moment is not None else ""
    return f"SELECT id FROM transaction WHERE type = '{PAYMENT}'{since} ORDER BY id"


def applications_to(invoice_id: str) -> str:
    """The payments and credit memos applied to an invoice: NextTransactionLineLink rows whose previous
    document is the invoice (the table and columns as the Records Catalog names them; not confirmed against a
    live account)."""
    return (
        "SELECT nextdoc, nexttype, foreignamount FROM nexttransactionlinelink "
        f"WHERE previousdoc = {internal_id(invoice_id)} ORDER BY nextdoc"
    )


def customers_named_like(word: str) -> str:
    return (
        "SELECT id, companyname, vatregnumber, externalid FROM customer "
        f"WHERE isinactive = 'F' AND LOWER(companyname) LIKE {text('%' + word.casefold() + '%')} ORDER BY id"
    )


CURRENCIES = "SELECT id, symbol, name, exchangerate, isinactive FROM currency ORDER BY id"
TAX_CODES = "SELECT id, itemid, rate, description, isinactive FROM salestaxitem ORDER BY id"
ACCOUNTS = "SELECT id, acctnumber, accountsearchdisplayname, accttype, isinactive FROM account ORDER BY id"
ITEMS = "SELECT id, itemid, displayname, itemtype, incomeaccount, isinactive FROM item ORDER BY id"
