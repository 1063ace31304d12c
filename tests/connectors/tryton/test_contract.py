"""The shared ERP contract, run against a real Tryton server."""

from __future__ import annotations

import pytest

from ..contract.erp_contract import ErpBooksContract

pytestmark = pytest.mark.tryton


class TestTrytonErpContract(ErpBooksContract):
    @pytest.fixture
    def other_revenue_account(self) -> str:
        return "4.3.3"

    @pytest.fixture
    def unknown_invoice_id(self) -> str:
        return "999999999"

    @pytest.fixture
    def tracks_practice(self) -> bool:
        # Tryton has an analytic root for every dimension, practice included.
        return True
