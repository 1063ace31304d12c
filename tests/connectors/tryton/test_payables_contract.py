"""Tryton passes the ERP payables contract on a real server ; bills are supplier invoices."""

from __future__ import annotations

import pytest

from ..contract.payables_contract import ErpPayablesContract

pytestmark = pytest.mark.tryton


class TestTrytonPayablesContract(ErpPayablesContract):
    @pytest.fixture
    def cost_account(self) -> str:
        return "5.1.3"
