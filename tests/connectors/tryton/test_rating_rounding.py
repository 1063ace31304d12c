"""Random months rated by ps-sync for the EU entity and posted to a real Tryton: Tryton books, line by line
and in total, exactly the invoice we computed (and the oracle of tests/unit/rating_months.py)."""

from __future__ import annotations

import uuid
from decimal import Decimal
from fractions import Fraction

import pytest

from canonical import LegalEntity, Money
from connectors.tryton.connector import TrytonConnector

from ...unit.rating_months import Month, expected, invoice_for, months, rated_lines, sample

pytestmark = pytest.mark.tryton

# A handful: each one is a real post (a second or two of Tryton's CPU); the properties run in tests/unit.
SAMPLES = 5


async def _booked_lines(erp: TrytonConnector, invoice_id: str) -> list[tuple[Decimal, Decimal]]:
    (record,) = await erp.rpc.read("account.invoice", [int(invoice_id)], ["lines"])
    lines = await erp.rpc.read("account.invoice.line", record["lines"], ["sequence", "quantity", "amount"])
    lines.sort(key=lambda line: (line["sequence"] or 0, line["id"]))
    return [(Decimal(str(line["quantity"])), line["amount"]) for line in lines]


async def test_tryton_books_the_total_we_rated_for_random_months(
    erp: TrytonConnector, entity: LegalEntity, customer_id: str
) -> None:
    assert (entity.erp, entity.currency, entity.line_rounding) == ("tryton", "EUR", "half_even")
    drawn = sample(
        months(erp="tryton", currency="EUR", line_rounding="half_even", min_entries=3, max_entries=25).filter(
            lambda m: bool(expected(m).lines)
        ),
        SAMPLES,
    )
    assert len(drawn) == SAMPLES
    prefix = f"PS-ROUND-{uuid.uuid4().hex[:8].upper()}"

    for index, month in enumerate(drawn):
        _, lines = rated_lines(month, entity)
        oracle = expected(month)
        invoice = invoice_for(month, entity, customer_id, lines, f"{prefix}-{index}")
        assert Fraction(invoice.total.amount) == oracle.total, month

        posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")

        assert posted.total == invoice.total, month
        assert await _booked_lines(erp, posted.invoice_id) == [
            (line.quantity, line.amount.amount) for line in lines
        ]


async def test_an_ordinary_month_of_505_minutes_is_posted_at_8_42_hours_instead_of_refused(
    erp: TrytonConnector, entity: LegalEntity, customer_id: str
) -> None:
    month = Month(
        erp="tryton",
        currency="EUR",
        line_rounding="half_even",
        versions=((1, (16575, 16575, 16575)),),
        entries=tuple((minutes, 1, 1) for minutes in [25] * 5 + [40] * 2 + [50] * 6),
        expenses=(),
        markup="0",
        model="time_and_materials",
        limit_cents=None,
        page=5,
    )
    _, lines = rated_lines(month, entity)
    invoice = invoice_for(month, entity, customer_id, lines, f"PS-ROUND-{uuid.uuid4().hex[:8].upper()}")

    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")

    assert [line.quantity for line in lines] == [Decimal("8.42")]
    # 8.42 x 165.75 = 1395.615: Tryton's currency.round (half-even) books 1395.62, and so did we.
    assert posted.total == invoice.total == Money.of("1395.62", "EUR")
