"""Random months rated by ps-sync for the UK entity and posted to the Xero sandbox: Xero books, line by line
and in total, exactly the invoice we computed (and the oracle of tests/unit/rating_months.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from fractions import Fraction

from canonical import Account, LegalEntity, Money
from connectors.xero import XeroConnector

from ...unit.rating_months import Month, expected, invoice_for, months, rated_lines, sample

# A handful: each one is a real post; the properties themselves run in tests/unit.
SAMPLES = 5


async def test_xero_books_the_total_we_rated_for_random_months(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    assert (entity.erp, entity.currency, entity.line_rounding) == ("xero", "GBP", "half_up")
    drawn = sample(
        months(erp="xero", currency="GBP", line_rounding="half_up", min_entries=3, max_entries=25).filter(
            lambda m: bool(expected(m).lines)
        ),
        SAMPLES,
    )
    assert len(drawn) == SAMPLES
    customer_id = await erp.create_customer(
        seed_account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}"
    )
    prefix = f"PS-ROUND-{uuid.uuid4().hex[:8].upper()}"

    for index, month in enumerate(drawn):
        _, lines = rated_lines(month, entity)
        oracle = expected(month)
        invoice = invoice_for(month, entity, customer_id, lines, f"{prefix}-{index}")
        assert Fraction(invoice.total.amount) == oracle.total, month

        posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")

        assert posted.total == invoice.total, month
        (booked,) = [
            b for b in await erp.booked_invoices(invoice.reference) if b.invoice_id == posted.invoice_id
        ]
        assert [(b.quantity, b.amount) for b in booked.lines] == [
            (line.quantity, line.amount) for line in lines
        ]


async def test_an_ordinary_month_of_505_minutes_at_165_75_is_booked_at_1395_07(
    erp: XeroConnector, entity: LegalEntity, seed_account: Account
) -> None:
    month = Month(
        erp="xero",
        currency="GBP",
        line_rounding="half_up",
        versions=((1, (16575, 16575, 16575)),),
        entries=tuple((minutes, 1, 1) for minutes in [25] * 5 + [40] * 2 + [50] * 6),
        expenses=(),
        markup="0",
        model="time_and_materials",
        limit_cents=None,
        page=5,
    )
    _, lines = rated_lines(month, entity)
    customer_id = await erp.create_customer(
        seed_account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}"
    )
    invoice = invoice_for(month, entity, customer_id, lines, f"PS-ROUND-{uuid.uuid4().hex[:8].upper()}")

    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")

    assert [line.quantity for line in lines] == [Decimal("8.4167")]
    assert posted.total == invoice.total == Money.of("1395.07", "GBP")
