"""The company's set-up the connector books against: currencies, taxes, accounts, products, terms.

Looked up by the names a finance team sees in Tryton (tax "VAT21", payment term "30 days", product
"Consulting services") and cached for the connector's lifetime; a name Tryton lacks is a `Rejected` that
says what to create, never a silent default.
"""

from __future__ import annotations

from typing import Any

from canonical import Invoice, LegalEntity
from connectors.errors import Conflict, FieldError, Rejected
from connectors.tryton import mapping
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"


def _rejected(message: str, field: str, detail: str) -> Rejected:
    return Rejected(message, system=SYSTEM, field_errors=[FieldError(field=field, message=detail)])


class TrytonBooks:
    def __init__(
        self, rpc: TrytonRpc, *, consulting_product: str, expenses_product: str, payment_method: str
    ) -> None:
        self._rpc = rpc
        self._product_names = (consulting_product, expenses_product)
        self._payment_method_name = payment_method
        self._ids: dict[tuple[str, str], int] = {}
        self._currency_codes: dict[int, str] = {}
        self._products: list[dict[str, Any]] | None = None

    async def company(self) -> int:
        """The session user's current company (logs in on first use: the context carries it)."""
        if self._rpc.user_id is None:
            await self._rpc.login()
        company = self._rpc.context.get("company")
        if not company:
            raise Rejected(f"Tryton user {self._rpc.user!r} has no current company", system=SYSTEM)
        return int(company)

    async def _lookup(self, kind: str, key: str, model: str, domain: list[Any]) -> int | None:
        cached = self._ids.get((kind, key))
        if cached is not None:
            return cached
        found = await self._rpc.search(model, domain, limit=2)
        if len(found) > 1:
            raise Conflict(f"Tryton has several {model} records for {kind} {key!r}", system=SYSTEM)
        if not found:
            return None
        self._ids[(kind, key)] = found[0]
        return found[0]

    async def currency(self, code: str, field: str) -> int:
        currency = await self._lookup("currency", code, "currency.currency", [("code", "=", code)])
        if currency is None:
            raise _rejected(f"Tryton has no currency {code}", field, f"unknown currency {code}")
        self._currency_codes[currency] = code
        return currency

    async def currency_code(self, currency_id: int) -> str:
        if currency_id not in self._currency_codes:
            (record,) = await self._rpc.read("currency.currency", [currency_id], ["code"])
            self._currency_codes[currency_id] = record["code"]
        return self._currency_codes[currency_id]

    async def country(self, code: str) -> int:
        country = await self._lookup("country", code, "country.country", [("code", "=", code)])
        if country is None:
            raise _rejected(
                f"Tryton has no country {code}", "billing_address.country", f"unknown country {code}"
            )
        return country

    async def tax(self, code: str) -> int | None:
        company = await self.company()
        domain = [("name", "=", code), ("company", "=", company), ("parent", "=", None)]
        return await self._lookup("tax", code, "account.tax", domain)

    async def account(self, code: str) -> int | None:
        company = await self.company()
        domain = [("code", "=", code), ("company", "=", company), ("closed", "!=", True)]
        return await self._lookup("account", code, "account.account", domain)

    async def journal(self) -> int:
        journal = await self._lookup("journal", "revenue", "account.journal", [("type", "=", "revenue")])
        if journal is None:
            raise Rejected("Tryton has no revenue journal for customer invoices", system=SYSTEM)
        return journal

    async def payment_term(self, days: int) -> int:
        name = f"{days} days"
        term = await self._lookup("payment_term", name, "account.invoice.payment_term", [("name", "=", name)])
        if term is None:
            raise _rejected(
                f"Tryton has no payment term named {name!r} for a due date {days} days after issue",
                "due_date",
                f"no payment term {name!r}",
            )
        return term

    async def payment_method(self) -> int:
        name = self._payment_method_name
        domain = [("name", "=", name), ("company", "=", await self.company())]
        method = await self._lookup("payment_method", name, "account.invoice.payment.method", domain)
        if method is None:
            raise Rejected(f"Tryton has no invoice payment method {name!r}", system=SYSTEM)
        return method

    async def default_receivable(self) -> int:
        # What Party.account_receivable_used falls back to (a Python property, so not readable over RPC).
        cached = self._ids.get(("account", "default receivable"))
        if cached is None:
            (config,) = await self._rpc.read("account.configuration", [1], ["default_account_receivable"])
            if not config["default_account_receivable"]:
                raise Rejected("Tryton has no default receivable account configured", system=SYSTEM)
            cached = self._ids[("account", "default receivable")] = int(config["default_account_receivable"])
        return cached

    async def customer(self, party: int) -> dict[str, Any]:
        """The customer's receivable account and the address to invoice (its first)."""
        found = await self._rpc.search_read(
            "party.party", [("id", "=", party)], ["id", "addresses", "account_receivable"]
        )
        if not found:
            raise _rejected(f"Tryton has no customer {party}", "customer_id", "unknown customer")
        if not found[0]["addresses"]:
            raise _rejected(f"Tryton customer {party} has no address to invoice", "customer_id", "no address")
        receivable = found[0]["account_receivable"] or await self.default_receivable()
        return {**found[0], "address": int(found[0]["addresses"][0]), "receivable": receivable}

    async def service_products(self) -> list[dict[str, Any]]:
        """The billing products, the first one the default: id, unit and revenue account."""
        if self._products is None:
            products = []
            for name in self._product_names:
                templates = await self._rpc.search_read(
                    "product.template",
                    [("name", "=", name), ("salable", "=", True)],
                    ["id", "default_uom", "account_category", "products"],
                    limit=1,
                )
                if not templates or not templates[0]["products"] or not templates[0]["account_category"]:
                    raise Rejected(
                        f"Tryton has no salable product {name!r} with an account category", system=SYSTEM
                    )
                template = templates[0]
                # account_revenue_used is a Python property in Tryton, not a field: read the category.
                (category,) = await self._rpc.read(
                    "product.category", [template["account_category"]], ["account_revenue"]
                )
                products.append(
                    {
                        "id": template["products"][0],
                        "unit": template["default_uom"],
                        "revenue": category["account_revenue"],
                    }
                )
            self._products = products
        return self._products

    async def line_refs(self, invoice: Invoice, entity: LegalEntity) -> list[mapping.LineRefs]:
        """Product, unit, account and tax of every line, or one Rejected naming every bad field."""
        products = await self.service_products()
        refs: list[mapping.LineRefs] = []
        errors: list[FieldError] = []
        for index, line in enumerate(invoice.lines):
            tax = None
            if line.tax_code not in entity.tax_codes:
                errors.append(
                    FieldError(
                        field=f"lines[{index}].tax_code",
                        code="unknown_tax",
                        message=f"{line.tax_code!r} is not a tax code of entity {entity.code}",
                    )
                )
            else:
                tax = await self.tax(line.tax_code)
                if tax is None:
                    errors.append(
                        FieldError(
                            field=f"lines[{index}].tax_code",
                            code="unknown_tax",
                            message=f"Tryton has no tax named {line.tax_code!r}",
                        )
                    )
            product = products[0]
            account: int | None = product["revenue"]
            if line.account_code:
                account = await self.account(line.account_code)
                if account is None:
                    errors.append(
                        FieldError(
                            field=f"lines[{index}].account_code",
                            code="unknown_account",
                            message=f"Tryton has no open account {line.account_code!r}",
                        )
                    )
                # The product whose revenue account this is classifies the line (consulting or re-billed).
                product = next((p for p in products if p["revenue"] == account), products[0])
            if tax is not None and account is not None:
                refs.append(
                    mapping.LineRefs(product=product["id"], unit=product["unit"], account=account, tax=tax)
                )
        if errors:
            raise Rejected("; ".join(e.message for e in errors), system=SYSTEM, field_errors=errors)
        return refs
