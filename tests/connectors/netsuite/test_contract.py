"""NetSuite passes the ERP role contract, its books checks included (accounts and project dimensions),
against the sandbox, under token-based authentication and under OAuth 2.0 client credentials alike."""

from __future__ import annotations

import pytest

from ..contract.erp_contract import ErpBooksContract


class TestNetSuiteErpContract(ErpBooksContract):
    @pytest.fixture
    def unknown_invoice_id(self) -> str:
        return "999999999"

    @pytest.fixture
    def other_revenue_account(self) -> str:
        # The sandbox's Advisory item books to 4200; lines without an account book to Consulting's 4000.
        return "4200"
