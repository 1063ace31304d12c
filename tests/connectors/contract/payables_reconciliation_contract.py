"""The booked-bills contract: what every `BookedBillSource` must report of the bills it holds, whoever the
vendor is, so payables reconciliation can hold them against the ledger and the PSA.

Subclass in a vendor's test module with the fixtures of the payables contract (`erp`, `entity`,
`cost_account`) and `void_bill`, an async callable that voids (cancels) a posted bill as a person in the ERP
would.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from canonical import InvoiceState, LegalEntity, Money
from canonical.payables import Bill, PostedBill
from connectors.roles import BookedBillSource, ErpPayables

from .payables_contract import _key, _supplier, build_bill

VoidBill = Callable[[str], Awaitable[None]]


def _prefix() -> str:
    # A prefix of its own per test: the ERP holds every other test's bills of the period too.
    return f"EXP-2026-11-{uuid.uuid4().hex[:8].upper()}"


async def _post(
    erp: ErpPayables, entity: LegalEntity, account: str, reference: str, *amounts: str
) -> tuple[Bill, PostedBill]:
    supplier_id = await erp.ensure_supplier(_supplier(), entity=entity, idempotency_key=_key("supplier"))
    bill = build_bill(entity, supplier_id, account, *amounts).model_copy(update={"reference": reference})
    return bill, await erp.post_bill(bill, entity=entity, idempotency_key=_key("bill"))


class BookedBillsContract:
    """What every ERP connector listing its bills must do. Subclass as `Test<Vendor>BookedBillsContract`."""

    def test_connector_lists_booked_bills(self, erp: BookedBillSource) -> None:
        assert isinstance(erp, BookedBillSource)

    async def test_a_posted_bill_comes_back_with_its_number_state_total_and_lines(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str
    ) -> None:
        prefix = _prefix()
        bill, posted = await _post(erp, entity, cost_account, f"{prefix}-A", "42.50", "310.00")
        assert isinstance(erp, BookedBillSource)

        (booked,) = await erp.booked_bills(prefix)

        assert (booked.bill_id, booked.number, booked.reference) == (
            posted.bill_id,
            posted.number,
            bill.reference,
        )
        assert booked.erp == erp.system
        assert booked.state == InvoiceState.AWAITING_PAYMENT
        assert booked.total == Money.of("352.50", entity.currency)
        assert booked.amount_paid == Money.zero(entity.currency)
        assert [line.amount for line in booked.lines] == [line.amount for line in bill.lines]
        assert [line.description for line in booked.lines] == [line.description for line in bill.lines]
        assert {line.account_code for line in booked.lines} == {cost_account}
        assert [line.quantity for line in booked.lines] == [Decimal(1), Decimal(1)]

    async def test_only_bills_whose_reference_starts_with_the_prefix_are_listed(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str
    ) -> None:
        prefix, other = _prefix(), _prefix()
        await _post(erp, entity, cost_account, f"{prefix}-A", "10.00")
        await _post(erp, entity, cost_account, f"{prefix}-B", "20.00")
        await _post(erp, entity, cost_account, f"{other}-A", "30.00")
        assert isinstance(erp, BookedBillSource)

        listed = await erp.booked_bills(prefix)

        assert sorted(b.reference for b in listed) == [f"{prefix}-A", f"{prefix}-B"]
        with pytest.raises(ValueError):
            await erp.booked_bills("")

    async def test_a_paid_bill_comes_back_paid_with_what_was_paid(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str
    ) -> None:
        prefix = _prefix()
        _, posted = await _post(erp, entity, cost_account, f"{prefix}-A", "18.00")
        await erp.pay_bill(
            posted.bill_id, posted.total, reference="expenses run", idempotency_key=_key("pay")
        )
        assert isinstance(erp, BookedBillSource)

        (booked,) = await erp.booked_bills(prefix)

        assert booked.state == InvoiceState.PAID
        assert booked.amount_paid == posted.total == booked.total

    async def test_a_voided_bill_is_still_listed_as_voided(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str, void_bill: VoidBill
    ) -> None:
        prefix = _prefix()
        _, posted = await _post(erp, entity, cost_account, f"{prefix}-A", "18.00")
        await void_bill(posted.bill_id)
        assert isinstance(erp, BookedBillSource)

        (booked,) = await erp.booked_bills(prefix)

        assert (booked.bill_id, booked.state) == (posted.bill_id, InvoiceState.VOIDED)
        assert booked.amount_paid == Money.zero(entity.currency)
