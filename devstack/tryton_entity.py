"""The EU entity's books as the template holds them, set up over JSON-RPC on a freshly initialised database.

Company, currencies and rates, chart of accounts, fiscal years, taxes, products, payment terms, payment
method, countries.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from connectors.tryton.connector import (
    DEFAULT_CONSULTING_PRODUCT,
    DEFAULT_EXPENSES_PRODUCT,
    DEFAULT_PAYMENT_METHOD,
)
from connectors.tryton.rpc import TrytonRpc, view_values

COMPANY_NAME = "Northwind Consulting B.V."
COMPANY_CURRENCY = "EUR"
# Rates are units of the currency per 1 EUR: Tryton converts with amount x to.rate / from.rate.
CURRENCIES = (
    ("EUR", "Euro", "€", Decimal("1")),
    ("GBP", "Pound Sterling", "£", Decimal("0.85")),
    ("USD", "US Dollar", "$", Decimal("1.08")),
)
# The countries customers are billed in (trytond_import_countries would need the network, so few are made).
# fmt: off
COUNTRIES = (
    ("AT", "Austria"), ("BE", "Belgium"), ("BG", "Bulgaria"), ("CH", "Switzerland"), ("CY", "Cyprus"),
    ("CZ", "Czechia"), ("DE", "Germany"), ("DK", "Denmark"), ("EE", "Estonia"), ("ES", "Spain"),
    ("FI", "Finland"), ("FR", "France"), ("GB", "United Kingdom"), ("GR", "Greece"), ("HR", "Croatia"),
    ("HU", "Hungary"), ("IE", "Ireland"), ("IT", "Italy"), ("LT", "Lithuania"), ("LU", "Luxembourg"),
    ("LV", "Latvia"), ("MT", "Malta"), ("NL", "Netherlands"), ("NO", "Norway"), ("PL", "Poland"),
    ("PT", "Portugal"), ("RO", "Romania"), ("SE", "Sweden"), ("SI", "Slovenia"), ("SK", "Slovakia"),
    ("US", "United States"),
)
# fmt: on
# (name, description, rate); names as the EU entity's LegalEntity.tax_codes spell them.
TAXES = (("VAT21", "VAT 21%", Decimal("0.21")), ("VAT0", "VAT 0%", Decimal("0")))
PAYMENT_TERM_DAYS = (0, 7, 14, 30, 45, 60, 90)
# Codes of the generic English chart (account.account_template_root_en).
ACCOUNT_RECEIVABLE = "1.2.1"
ACCOUNT_PAYABLE = "2.1.1"
ACCOUNT_REVENUE_SERVICES = "4.1.2"
ACCOUNT_REVENUE_REBILLED = "4.3.3"
ACCOUNT_EXPENSE = "5.1.3"
ACCOUNT_CASH = "1.1.1"
ACCOUNT_VAT = "2.2.3"
# The names the connector looks for, so the bootstrap and the connector cannot drift apart.
PRODUCT_CONSULTING = DEFAULT_CONSULTING_PRODUCT
PRODUCT_EXPENSES = DEFAULT_EXPENSES_PRODUCT
PAYMENT_METHOD = DEFAULT_PAYMENT_METHOD


async def bootstrap_entity(*, url: str, database: str, user: str, password: str) -> None:
    """Set up the EU entity's books on a freshly initialised database, over JSON-RPC only."""
    rpc = TrytonRpc(url=url, database=database, user=user, password=password, timeout=120.0)
    try:
        await _bootstrap(rpc)
    finally:
        await rpc.aclose()


async def _bootstrap(rpc: TrytonRpc) -> None:
    today = dt.datetime.now(dt.UTC).date()
    await rpc.login()
    assert rpc.user_id is not None

    rates_from = dt.date(today.year - 2, 1, 1)
    currency_ids: dict[str, int] = {}
    for code, name, symbol, rate in CURRENCIES:
        (currency_ids[code],) = await rpc.create(
            "currency.currency",
            [
                {
                    "name": name,
                    "code": code,
                    "symbol": symbol,
                    "rounding": Decimal("0.01"),
                    "digits": 2,
                    "rates": [["create", [{"date": rates_from, "rate": rate}]]],
                }
            ],
        )

    await rpc.create("country.country", [{"code": code, "name": name} for code, name in COUNTRIES])
    (nl,) = await rpc.search("country.country", [("code", "=", "NL")])

    (company_party,) = await rpc.create(
        "party.party",
        [
            {
                "name": COMPANY_NAME,
                "addresses": [
                    [
                        "create",
                        [
                            {
                                "street": "Herengracht 100",
                                "postal_code": "1015 BS",
                                "city": "Amsterdam",
                                "country": nl,
                            }
                        ],
                    ]
                ],
            }
        ],
    )
    (company,) = await rpc.create(
        "company.company",
        [
            {
                "party": company_party,
                "currency": currency_ids[COMPANY_CURRENCY],
                # Lets void_invoice cancel a posted customer invoice (by default Tryton wants a credit note).
                "cancel_invoice_out": True,
            }
        ],
    )
    await rpc.write("res.user", [rpc.user_id], {"companies": [["add", [company]]], "company": company})
    await rpc.refresh_context()

    async def account(code: str) -> int:
        found = await rpc.search("account.account", [("company", "=", company), ("code", "=", code)], limit=1)
        if not found:
            raise RuntimeError(f"the chart has no account {code}")
        return found[0]

    root_template = await rpc.ref("account.account_template_root_en")
    results: list[Any] = []

    async def properties(previous: dict[str, Any]) -> dict[str, Any]:
        return {
            "properties": {
                **view_values(previous),
                "account_receivable": await account(ACCOUNT_RECEIVABLE),
                "account_payable": await account(ACCOUNT_PAYABLE),
                "category_account_revenue": await account(ACCOUNT_REVENUE_SERVICES),
                "category_account_expense": await account(ACCOUNT_EXPENSE),
            }
        }

    session_id, start_state, _ = await rpc.call("wizard.account.create_chart.create")
    try:
        results.append(await rpc.call("wizard.account.create_chart.execute", session_id, {}, start_state))
        results.append(await rpc.call("wizard.account.create_chart.execute", session_id, {}, "account"))
        results.append(
            await rpc.call(
                "wizard.account.create_chart.execute",
                session_id,
                {"account": {"account_template": root_template, "company": company}},
                "create_account",
            )
        )
        await rpc.call(
            "wizard.account.create_chart.execute",
            session_id,
            await properties(results[-1]),
            "create_properties",
        )
    finally:
        await rpc.call("wizard.account.create_chart.delete", session_id)

    move_type = await rpc.ref("account.sequence_type_account_move")
    invoice_type = await rpc.ref("account_invoice.sequence_type_account_invoice")
    for year in (today.year - 1, today.year, today.year + 1):
        move_seq, invoice_seq, credit_seq = await rpc.create(
            "ir.sequence.strict",
            [
                {
                    "name": f"Moves {year}",
                    "company": company,
                    "sequence_type": move_type,
                    "prefix": f"M{year}-",
                },
                {
                    "name": f"Invoices {year}",
                    "company": company,
                    "sequence_type": invoice_type,
                    "prefix": f"NW-EU-{year}-",
                    "padding": 5,
                },
                {
                    "name": f"Credit notes {year}",
                    "company": company,
                    "sequence_type": invoice_type,
                    "prefix": f"NW-EU-CN-{year}-",
                    "padding": 5,
                },
            ],
        )
        (fiscal_year,) = await rpc.create(
            "account.fiscalyear",
            [
                {
                    "name": str(year),
                    "company": company,
                    "move_sequence": move_seq,
                    "start_date": dt.date(year, 1, 1),
                    "end_date": dt.date(year, 12, 31),
                    "invoice_sequences": [
                        [
                            "create",
                            [
                                {
                                    "company": company,
                                    "out_invoice_sequence": invoice_seq,
                                    "out_credit_note_sequence": credit_seq,
                                    "in_invoice_sequence": invoice_seq,
                                    "in_credit_note_sequence": credit_seq,
                                }
                            ],
                        ]
                    ],
                }
            ],
        )
        await rpc.call("model.account.fiscalyear.create_period", [fiscal_year])

    vat_account = await account(ACCOUNT_VAT)
    tax_ids = await rpc.create(
        "account.tax",
        [
            {
                "name": name,
                "description": description,
                "type": "percentage",
                "rate": rate,
                "company": company,
                "invoice_account": vat_account,
                "credit_note_account": vat_account,
            }
            for name, description, rate in TAXES
        ],
    )
    default_tax = tax_ids[0]

    time_category = await rpc.ref("product.uom_cat_time")
    unit_category = await rpc.ref("product.uom_cat_unit")
    # Tryton's own Hour and Unit keep 2 and 0 decimals; time is billed to 4 (0.3333 h of a retainer).
    hour, unit = await rpc.create(
        "product.uom",
        [
            {
                "name": "Billable hour",
                "symbol": "bh",
                "category": time_category,
                "factor": 1.0,
                "rate": 1.0,
                "rounding": 0.0001,
                "digits": 4,
            },
            {
                "name": "Billable unit",
                "symbol": "bu",
                "category": unit_category,
                "factor": 1.0,
                "rate": 1.0,
                "rounding": 0.0001,
                "digits": 4,
            },
        ],
    )
    services, rebilled = await rpc.create(
        "product.category",
        [
            {
                "name": "Professional services",
                "accounting": True,
                "account_revenue": await account(ACCOUNT_REVENUE_SERVICES),
                "account_expense": await account(ACCOUNT_EXPENSE),
                "customer_taxes": [["add", [default_tax]]],
            },
            {
                "name": "Re-billed expenses",
                "accounting": True,
                "account_revenue": await account(ACCOUNT_REVENUE_REBILLED),
                "account_expense": await account(ACCOUNT_EXPENSE),
                "customer_taxes": [["add", [default_tax]]],
            },
        ],
    )
    await rpc.create(
        "product.template",
        [
            {
                "name": PRODUCT_CONSULTING,
                "type": "service",
                "default_uom": hour,
                "sale_uom": hour,
                "salable": True,
                "list_price": Decimal("0"),
                "account_category": services,
                "products": [["create", [{}]]],
            },
            {
                "name": PRODUCT_EXPENSES,
                "type": "service",
                "default_uom": unit,
                "sale_uom": unit,
                "salable": True,
                "list_price": Decimal("0"),
                "account_category": rebilled,
                "products": [["create", [{}]]],
            },
        ],
    )

    await rpc.create(
        "account.invoice.payment_term",
        [
            {
                "name": f"{days} days",
                "lines": [
                    ["create", [{"type": "remainder", "relativedeltas": [["create", [{"days": days}]]]}]]
                ],
            }
            for days in PAYMENT_TERM_DAYS
        ],
    )

    (cash_journal,) = await rpc.search("account.journal", [("type", "=", "cash")], limit=1)
    cash = await account(ACCOUNT_CASH)
    await rpc.create(
        "account.invoice.payment.method",
        [
            {
                "name": PAYMENT_METHOD,
                "company": company,
                "journal": cash_journal,
                "credit_account": cash,
                "debit_account": cash,
            }
        ],
    )
