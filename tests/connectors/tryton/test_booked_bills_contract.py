"""Tryton passes the booked-bills contract on a real server: bills are supplier invoices (type `in`) read
back by their reference, with their lines' accounts."""

from __future__ import annotations

import pytest

from connectors.tryton.connector import TrytonConnector

from ..contract.payables_reconciliation_contract import BookedBillsContract, VoidBill

pytestmark = pytest.mark.tryton


class TestTrytonBookedBillsContract(BookedBillsContract):
    @pytest.fixture
    def cost_account(self) -> str:
        return "5.1.3"

    @pytest.fixture
    def void_bill(self, erp: TrytonConnector) -> VoidBill:
        async def cancel(bill_id: str) -> None:
            # As finance cancels a posted supplier invoice in Tryton's client.
            await erp.rpc.button("account.invoice", "cancel", [int(bill_id)])

        return cancel
