"""An overpayment registered in Tryton shows as `amount_overpaid` on the invoice, until it is applied."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest

from canonical import Account, Invoice, InvoiceLine, InvoiceState, LegalEntity, Money
from connectors.tryton.connector import TrytonConnector

from ...support.tryton_finance import register_overpayment

pytestmark = pytest.mark.tryton


async def _posted(erp: TrytonConnector, entity: LegalEntity, account: Account) -> str:
    customer = await erp.create_customer(account, entity=entity, idempotency_key=f"c:{account.id}")
    today = date.today()
    invoice = Invoice(
        legal_entity=entity.code,
        customer_id=customer,
        customer_name=account.name,
        project_id="PRJ-OVERPAY",
        period=f"{today.year:04d}-{today.month:02d}",
        currency="EUR",
        issue_date=today,
        due_date=today + timedelta(days=30),
        reference=f"PSS-{uuid.uuid4().hex[:12].upper()}",
        lines=(
            InvoiceLine(
                description="Consulting",
                quantity=Decimal(10),
                unit_price=Money.of("100.00", "EUR"),
                tax_code="VAT21",
                rounding="half_even",
            ),
        ),
    )
    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=f"i:{invoice.reference}")
    return posted.invoice_id


async def test_overpaid_invoice_is_paid_and_reports_the_excess_as_overpaid(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account
) -> None:
    invoice_id = await _posted(erp, entity, seed_account)

    await register_overpayment(erp, invoice_id, Money.of("1300.00", "EUR"), reference="SEPA overpaid")
    status = await erp.get_invoice(invoice_id)

    assert status.state == InvoiceState.PAID
    assert status.total == Money.of("1210.00", "EUR")
    assert status.amount_paid == Money.of("1210.00", "EUR"), "the invoice's own payment is what it owed"
    assert status.amount_overpaid == Money.of("90.00", "EUR")


async def test_an_exact_payment_reports_no_overpayment(
    erp: TrytonConnector, entity: LegalEntity, seed_account: Account
) -> None:
    invoice_id = await _posted(erp, entity, seed_account)

    await erp.apply_payment(
        invoice_id, Money.of("1210.00", "EUR"), reference="exact", idempotency_key=str(uuid.uuid4())
    )

    status = await erp.get_invoice(invoice_id)
    assert status.state == InvoiceState.PAID and status.amount_overpaid is None
