"""The ERP payables contract: what every `ErpPayables` connector must do, whoever the vendor is.

Subclass in a vendor's test module with the fixtures `erp` (a connected connector), `entity` (the
`LegalEntity` it books), `cost_account` (the code of an active expense account of that entity's chart),
`seed_account` (a CRM account to make a customer and project of) and `bill_line_dimensions` (reads a posted
bill's lines back from the ERP: per line, the (dimension, code) pairs it books).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest

from canonical import Account, InvoiceState, LegalEntity, Money
from canonical.payables import Bill, BillLine, SubcontractedTime, Supplier
from connectors.errors import Rejected
from connectors.roles import ErpConnector, ErpPayables, ErpProjectBooks
from domain.erp_rounding import rounding_rule
from domain.payables import CostedTime, time_bill_lines

from .erp_contract import project_spec

# Per line of a posted bill, the (dimension, code) pairs the ERP books it under.
BillLineDimensions = Callable[[str], Awaitable[list[set[tuple[str, str]]]]]


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

    async def test_a_bill_line_carries_its_projects_dimensions_as_the_erp_reads_them_back(
        self,
        erp: ErpPayables,
        entity: LegalEntity,
        cost_account: str,
        seed_account: Account,
        bill_line_dimensions: BillLineDimensions,
    ) -> None:
        assert isinstance(erp, ErpProjectBooks) and isinstance(erp, ErpConnector)
        customer_id = await erp.create_customer(seed_account, entity=entity, idempotency_key=_key("customer"))
        project = await erp.ensure_erp_project(project_spec(seed_account, customer_id), entity=entity)
        supplier_id = await erp.ensure_supplier(_supplier(), entity=entity, idempotency_key=_key("supplier"))
        plain = build_bill(entity, supplier_id, cost_account, "42.50", "12.00")
        tagged = plain.lines[0].model_copy(update={"dimensions": project.dimensions})
        bill = plain.model_copy(update={"lines": (tagged, plain.lines[1])})

        posted = await erp.post_bill(bill, entity=entity, idempotency_key=_key("bill"))
        booked = await bill_line_dimensions(posted.bill_id)

        assert posted.total == Money.of("54.50", entity.currency)
        assert booked == [{(v.dimension, v.code) for v in project.dimensions}, set()]

    async def test_subcontracted_time_books_hours_at_the_cost_rate_to_the_total_we_computed(
        self, erp: ErpPayables, entity: LegalEntity, cost_account: str
    ) -> None:
        supplier_id = await erp.ensure_supplier(_supplier(), entity=entity, idempotency_key=_key("supplier"))
        costed = [
            CostedTime(
                entry=SubcontractedTime(
                    id=f"{index}",
                    project_id="30100001",
                    person_id=person,
                    person_name=f"Sam {person}",
                    supplier="Contractors Ltd",
                    date=date.today(),
                    minutes=minutes,
                    currency=entity.currency,
                    cost_rate=Money.of(rate, entity.currency),
                ),
                cost_rate=Money.of(rate, entity.currency),
                account_code=cost_account,
            )
            # Odd minutes, whose hours do not terminate, at rates with cents.
            for index, (person, minutes, rate) in enumerate(
                [("1", 505, "61.37"), ("1", 25, "61.37"), ("2", 7, "83.33"), ("2", 1439, "47.05")]
            )
        ]
        lines = time_bill_lines(costed, rounding_rule(entity))
        bill = build_bill(entity, supplier_id, cost_account).model_copy(update={"lines": tuple(lines)})

        posted = await erp.post_bill(bill, entity=entity, idempotency_key=_key("bill"))

        # One line per person and rate: person 1's 530 minutes are 8.8333... h, stored as the ERP keeps them.
        assert lines[0].quantity == round(Decimal(530) / 60, entity.quantity_places)
        assert len(lines) == 3
        assert posted.total == bill.total
        assert (await erp.get_bill(posted.bill_id)).total == bill.total
