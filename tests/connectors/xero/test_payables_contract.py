"""Xero passes the ERP payables contract against the sandbox; bills are ACCPAY invoices."""

from __future__ import annotations

import pytest

from connectors.xero import XeroConnector
from connectors.xero.reference import booked_dimensions

from ..contract.payables_contract import BillLineDimensions, ErpPayablesContract


class TestXeroPayablesContract(ErpPayablesContract):
    @pytest.fixture
    def cost_account(self) -> str:
        return "429"  # General Expenses

    @pytest.fixture
    def bill_line_dimensions(self, erp: XeroConnector) -> BillLineDimensions:
        async def read(bill_id: str) -> list[set[tuple[str, str]]]:
            (doc,) = (await erp.client.get(f"/Invoices/{bill_id}"))["Invoices"]
            return [
                {(v.dimension, v.code) for v in booked_dimensions(line.get("Tracking") or [])}
                for line in doc["LineItems"]
            ]

        return read
