"""Xero passes the ERP payables contract against the sandbox; bills are ACCPAY invoices."""

from __future__ import annotations

import pytest

from ..contract.payables_contract import ErpPayablesContract


class TestXeroPayablesContract(ErpPayablesContract):
    @pytest.fixture
    def cost_account(self) -> str:
        return "429"  # General Expenses
