"""Xero passes the ERP role contract (against the sandbox, spec-validated)."""

from __future__ import annotations

import pytest

from ..contract.erp_contract import ErpBooksContract


class TestXeroErpContract(ErpBooksContract):
    @pytest.fixture
    def other_revenue_account(self) -> str:
        return "260"
