"""Project, customer and practice as Tryton analytic accounts (modules `analytic_account` and
`analytic_invoice`).

One analytic root per dimension (`PROJECT` "Projects", `CUSTOMER` "Customers", `PRACTICE` "Practices", made
when missing), and under each a normal account per value, keyed by its code: the project's code (the PSA
project id), the customer's (the CRM account id, also the party's code) or the practice's (its name in
capitals, `canonical.dimensions.practice_code`). Invoice lines carry one analytic entry per root, so the
posted move lines book analytic lines against each account.

Tryton keeps analytic account codes unique by nothing but convention: an account is found by company, root
and code, and several matches is a Conflict for a person to settle.
"""

from __future__ import annotations

from typing import Any

from canonical import InvoiceLine
from canonical.dimensions import Dimension, DimensionValue
from connectors.errors import Conflict, FieldError, Rejected
from connectors.tryton.books import TrytonBooks
from connectors.tryton.rpc import TrytonRpc

SYSTEM = "tryton"
MODEL = "analytic_account.account"
ROOTS: dict[Dimension, tuple[str, str]] = {
    "project": ("PROJECT", "Projects"),
    "customer": ("CUSTOMER", "Customers"),
    "practice": ("PRACTICE", "Practices"),
}


class TrytonAnalytics:
    """Finds and makes the analytic accounts of one company; ids are cached for the connector's lifetime."""

    def __init__(self, rpc: TrytonRpc, books: TrytonBooks) -> None:
        self._rpc = rpc
        self._books = books
        self._ids: dict[tuple[str, str], int] = {}

    async def _find(self, domain: list[Any], what: str) -> int | None:
        found = await self._rpc.search(MODEL, domain, limit=2)
        if len(found) > 1:
            raise Conflict(f"Tryton has several analytic accounts for {what}", system=SYSTEM)
        return found[0] if found else None

    async def root(self, dimension: Dimension, *, create: bool) -> int | None:
        code, name = ROOTS[dimension]
        cached = self._ids.get((code, ""))
        if cached is not None:
            return cached
        company = await self._books.company()
        domain = [("company", "=", company), ("type", "=", "root"), ("code", "=", code)]
        root = await self._find(domain, f"root {code}")
        if root is None and create:
            (root,) = await self._rpc.create(
                MODEL, [{"name": name, "code": code, "type": "root", "company": company, "state": "opened"}]
            )
        if root is not None:
            self._ids[(code, "")] = root
        return root

    async def account(self, dimension: Dimension, code: str) -> int | None:
        root = await self.root(dimension, create=False)
        if root is None:
            return None
        cached = self._ids.get((ROOTS[dimension][0], code))
        if cached is not None:
            return cached
        domain = [("root", "=", root), ("type", "=", "normal"), ("code", "=", code)]
        account = await self._find(domain, f"{dimension} {code!r}")
        if account is not None:
            self._ids[(ROOTS[dimension][0], code)] = account
        return account

    async def ensure(self, dimension: Dimension, code: str, name: str) -> DimensionValue:
        """The value's analytic account, made under its dimension's root when missing."""
        root = await self.root(dimension, create=True)
        assert root is not None
        if await self.account(dimension, code) is None:
            (created,) = await self._rpc.create(
                MODEL,
                [
                    {
                        "name": f"{code} {name}",
                        "code": code,
                        "type": "normal",
                        "root": root,
                        "parent": root,
                        "company": await self._books.company(),
                        "state": "opened",
                    }
                ],
            )
            self._ids[(ROOTS[dimension][0], code)] = created
        return DimensionValue(dimension=dimension, code=code, name=name)

    async def entries(self, line: InvoiceLine, index: int) -> tuple[list[dict[str, int]], list[FieldError]]:
        """The line's analytic entries (one per dimension), or what Tryton lacks for them."""
        entries: list[dict[str, int]] = []
        errors: list[FieldError] = []
        for value in line.dimensions:
            account = await self.account(value.dimension, value.code)
            if account is None:
                errors.append(
                    FieldError(
                        field=f"lines[{index}].dimensions",
                        code="unknown_analytic_account",
                        message=f"Tryton has no {value.dimension} analytic account {value.code!r} under "
                        f"root {ROOTS[value.dimension][0]}",
                    )
                )
                continue
            root = await self.root(value.dimension, create=False)
            assert root is not None
            entries.append({"root": root, "account": account})
        return entries, errors


def rejected(errors: list[FieldError]) -> Rejected:
    return Rejected("; ".join(e.message for e in errors), system=SYSTEM, field_errors=errors)
