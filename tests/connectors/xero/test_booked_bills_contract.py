"""Xero passes the booked-bills contract against the sandbox: bills are ACCPAY invoices read back with a
`where` filter on their InvoiceNumber, page by page."""

from __future__ import annotations

import pytest

from connectors.xero import XeroConnector

from ..contract.payables_reconciliation_contract import BookedBillsContract, VoidBill


class TestXeroBookedBillsContract(BookedBillsContract):
    @pytest.fixture
    def cost_account(self) -> str:
        return "429"  # General Expenses

    @pytest.fixture
    def void_bill(self, erp: XeroConnector) -> VoidBill:
        return erp.void_invoice
