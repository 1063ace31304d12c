"""The shared ERP contract, run against a real Tryton server."""

from __future__ import annotations

import pytest

from ..contract.erp_contract import ErpContract

pytestmark = pytest.mark.tryton


class TestTrytonErpContract(ErpContract):
    @pytest.fixture
    def unknown_invoice_id(self) -> str:
        return "999999999"
