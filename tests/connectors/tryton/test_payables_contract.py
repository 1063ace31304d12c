"""Tryton passes the ERP payables contract on a real server ; bills are supplier invoices."""

from __future__ import annotations

import pytest

from connectors.tryton import analytic
from connectors.tryton.connector import TrytonConnector

from ..contract.payables_contract import BillLineDimensions, ErpPayablesContract

pytestmark = pytest.mark.tryton


class TestTrytonPayablesContract(ErpPayablesContract):
    @pytest.fixture
    def cost_account(self) -> str:
        return "5.1.3"

    @pytest.fixture
    def bill_line_dimensions(self, erp: TrytonConnector) -> BillLineDimensions:
        async def read(bill_id: str) -> list[set[tuple[str, str]]]:
            (invoice,) = await erp.rpc.read("account.invoice", [int(bill_id)], ["lines"])
            lines = await erp.rpc.read("account.invoice.line", invoice["lines"], ["id", "analytic_accounts"])
            dimension_of = {code: dimension for dimension, (code, _) in analytic.ROOTS.items()}
            found: list[set[tuple[str, str]]] = []
            for line in sorted(lines, key=lambda record: record["id"]):
                entries = await erp.rpc.read(
                    "analytic.account.entry", line["analytic_accounts"] or [], ["root", "account"]
                )
                pairs = set()
                # Tryton keeps an entry per analytic root, without an account for a root the line skips.
                for entry in (e for e in entries if e["account"] is not None):
                    (root,) = await erp.rpc.read(analytic.MODEL, [entry["root"]], ["code"])
                    (account,) = await erp.rpc.read(analytic.MODEL, [entry["account"]], ["code"])
                    pairs.add((dimension_of[root["code"]], account["code"]))
                found.append(pairs)
            return found

        return read
