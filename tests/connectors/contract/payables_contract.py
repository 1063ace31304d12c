"""The ERP payables contract: what every `ErpPayables` connector must do, whoever the vendor is.

Subclass in a vendor's test module with the fixtures `erp` (a connected connector), `entity` (the
`LegalEntity` it books) and `cost_account` (the code of an active expense account of that entity's chart).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from canonical import InvoiceState, LegalEntity, Money
from canonical.payables import Bill, BillLine, Supplier
from connectors.errors import Rejected
from connectors.roles import ErpPayables


def _key(purpose: str) -> str:
    return f"contract:{purpose}:{uuid.uuid4()}"


def _supplier() -> Supplier:
    suffix = uuid.uuid4().hex[:10]
    return Supplier(
        key=f"person:kantata:{suffix}", name=f"Ada Lovelace {suffix}", email=f"ada.{suffix}@example.com"
    )


def build_bill(entity: LegalEntity, supplier_id: str, account: str, *amounts: str) -> Bill:
    today = date.today()
    return Bill(
        reference=f"EXP-{uuid.uuid4().hex[:12].upper()}",
        legal_entity=entity.code,
        supplier_id=supplier_id,
        supplier_name="Ada Lovelace",
        currency=entity.currency,
        issue_date=today,
        due_date=today + timedelta(days=14),
        lines=tuple(
            BillLine(
                description=f"Taxi to client site (receipt: Kantata expense {index})",
                amount=Money.of(amount, entity.currency),
                account_code=account,
                expense_id=str(index),
            )
            for index, amount in enumerate(amounts)
        ),
    )


class ErpPayablesContract:
    """What every ERP connector offering payables must do. Subclass as `Test<Vendor>PayablesContract`."""

    def test_connector_offers_payables(self, erp: ErpPayables) -> None:
        assert isinstance(erp, ErpPayables)

    async def test_a_supplier_is_created_once_and_found_again_by_its_key(
        self, erp: ErpPayables, entity: LegalEntity
    ) -> None:
        supplier = _supplier()

        first = await erp.ensure_supplier(supplier, entity=entity, idempotency_key=_key("supplier"))
        again = await erp.ensure_supplier(supplier, entity=entity, idempotency_key=_key("supplier"))

        assert first and first == again

    async def test_a_bill_is_posted_once_under_its_key_and_its_reference(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str
    ) -> None:
        supplier_id = await erp.ensure_supplier(_supplier(), entity=entity, idempotency_key=_key("supplier"))
        bill = build_bill(entity, supplier_id, cost_account, "42.50", "310.00")
        key = _key("bill")

        posted = await erp.post_bill(bill, entity=entity, idempotency_key=key)
        retried = await erp.post_bill(bill, entity=entity, idempotency_key=key)
        # A later run that lost the key still finds the bill by its reference.
        rerun = await erp.post_bill(bill, entity=entity, idempotency_key=_key("bill"))

        assert posted.total == Money.of("352.50", entity.currency)
        assert posted.state == InvoiceState.AWAITING_PAYMENT
        assert retried.bill_id == posted.bill_id == rerun.bill_id
        status = await erp.get_bill(posted.bill_id)
        assert status.state == InvoiceState.AWAITING_PAYMENT
        assert status.total == Money.of("352.50", entity.currency)
        assert status.amount_paid == Money.zero(entity.currency)

    async def test_paying_the_whole_bill_makes_it_paid(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str
    ) -> None:
        supplier_id = await erp.ensure_supplier(_supplier(), entity=entity, idempotency_key=_key("supplier"))
        posted = await erp.post_bill(
            build_bill(entity, supplier_id, cost_account, "18.00"),
            entity=entity,
            idempotency_key=_key("bill"),
        )

        await erp.pay_bill(
            posted.bill_id, posted.total, reference="expenses run", idempotency_key=_key("pay")
        )

        status = await erp.get_bill(posted.bill_id)
        assert status.state == InvoiceState.PAID
        assert status.amount_paid == posted.total

    async def test_a_bill_line_on_an_account_the_erp_lacks_is_rejected(
        self, erp: ErpPayables, entity: LegalEntity
    ) -> None:
        supplier_id = await erp.ensure_supplier(_supplier(), entity=entity, idempotency_key=_key("supplier"))

        with pytest.raises(Rejected):
            await erp.post_bill(
                build_bill(entity, supplier_id, "99999", "10.00"), entity=entity, idempotency_key=_key("bill")
            )
