"""Rating prices every month as the booking ERP will: checked against an independent oracle
(tests/unit/rating_months.py, written from the README's "How ps-sync rounds") on random months.

Run with `-s` to see the largest difference between a month's exact value and its invoice that the
properties met, per ERP; `MAX_DIFFERENCE` holds it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical import Invoice, InvoiceLine, Money, TimeEntry
from canonical.money import RoundingRule, round_places
from config import default_entities
from connectors.errors import Rejected
from connectors.tryton import mapping as tryton_mapping
from connectors.xero import mapping as xero_mapping
from domain.billing_validation import BillingContext
from domain.erp_rounding import rounding_rule
from domain.rating import RatedWork, invoice_lines, rate_time

from .billing_fixtures import context, entry
from .rating_months import Month, expected, months, rated_lines

# erp -> (largest |exact value - billed total| seen on one invoice, the month's bound then)
MAX_DIFFERENCE: dict[str, tuple[Fraction, Fraction]] = {}

PROPERTY = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.fixture(scope="module", autouse=True)
def _report_largest_difference() -> Iterator[None]:
    yield
    for erp, (difference, bound) in sorted(MAX_DIFFERENCE.items()):
        print(
            f"\nrating properties, {erp}: largest |exact value - billed| on one invoice "
            f"{float(difference):.6f} (that invoice's bound {float(bound):.6f})"
        )


def _record(month: Month, difference: Fraction, bound: Fraction) -> None:
    seen = MAX_DIFFERENCE.get(month.erp)
    if seen is None or difference > seen[0]:
        MAX_DIFFERENCE[month.erp] = (difference, bound)


def _fractions(line: InvoiceLine) -> tuple[Fraction, Fraction, Fraction]:
    return Fraction(line.quantity), Fraction(line.unit_price.amount), Fraction(line.amount.amount)


@PROPERTY
@given(months())
def test_invoice_lines_and_total_are_the_oracles_and_within_the_bound(month: Month) -> None:
    work, lines = rated_lines(month)
    oracle = expected(month)

    assert [_fractions(line) for line in lines] == [
        (e.quantity, e.unit_price, e.amount) for e in oracle.lines
    ]
    total = sum((Fraction(line.amount.amount) for line in lines), Fraction(0))
    assert total == oracle.total
    assert work.time_entry_ids == oracle.billed_time_ids
    assert work.held_back_ids == oracle.held_back_ids
    if month.model == "cap":
        # Counted as billed, after rounding: the invoice never goes beyond the cap.
        assert month.limit_cents is not None and total <= Fraction(month.limit_cents, 100)
    difference = abs(oracle.exact_value - total)
    assert difference <= oracle.bound
    _record(month, difference, oracle.bound)


@PROPERTY
@given(months(), st.data())
def test_a_cap_reached_exactly_bills_everything_up_to_it(month: Month, data: st.DataObject) -> None:
    """A cap equal to what the first k entries bill: they are billed to the cent of it, the rest held."""
    count = data.draw(st.integers(min_value=0, max_value=len(month.entries)))
    prefix = replace(month, entries=month.entries[:count], expenses=(), model="time_and_materials")
    cap_cents = int(expected(prefix).total * 100)
    capped = replace(month, model="cap", limit_cents=cap_cents)
    work, lines = rated_lines(capped)
    oracle = expected(capped)

    assert [_fractions(line) for line in lines] == [
        (e.quantity, e.unit_price, e.amount) for e in oracle.lines
    ]
    assert work.time_entry_ids[:count] == tuple(f"t{i}" for i in range(count))
    assert sum(Fraction(line.amount.amount) for line in lines) <= Fraction(cap_cents, 100)


@PROPERTY
@given(months())
def test_every_line_is_what_the_erp_computes_from_what_it_stores(month: Month) -> None:
    """Storing the line as the ERP stores it (quantity and unit price to its places) changes nothing, and
    its amount is quantity x unit price rounded once, so the ERP's LineAmount is ours."""
    _, lines = rated_lines(month)
    places = {"xero": (4, 4), "tryton": (2, 4)}[month.erp]
    for line in lines:
        quantity, price, amount = _fractions(line)
        assert quantity * 10 ** places[0] == int(quantity * 10 ** places[0])
        assert price * 10 ** places[1] == int(price * 10 ** places[1])
        assert line.rounding == month.line_rounding
        assert amount * 100 == int(amount * 100)


def _minutes_entries(minutes: list[int]) -> list[TimeEntry]:
    return [
        entry(f"e{i}", hours=str(Decimal(m) / Decimal(60)), role="Consultant", day=date(2026, 10, 1))
        for i, m in enumerate(minutes)
    ]


# 505 minutes of 25, 40 and 50 minute entries: 8.41666... h at 165.75.
ORDINARY_MONTH = [25] * 5 + [40] * 2 + [50] * 6


def _card_at(rate: str, entity_code: str) -> BillingContext:
    entity = next(e for e in default_entities() if e.code == entity_code)
    base = context(entity=entity, contract={"currency": entity.currency, "tax_code": entity.default_tax_code})
    card = base.rate_card.model_copy(
        update={
            "currency": entity.currency,
            "versions": tuple(
                v.model_copy(
                    update={
                        "rates": tuple(
                            r.model_copy(update={"rate": Money.of(rate, entity.currency)}) for r in v.rates
                        )
                    }
                )
                for v in base.rate_card.versions
            ),
        }
    )
    return base.model_copy(update={"rate_card": card})


def test_an_ordinary_month_bills_8_4167_hours_at_165_75_as_xero_books_it() -> None:
    assert sum(ORDINARY_MONTH) == 505
    ctx = _card_at("165.75", "UK")
    work = rate_time(RatedWork(), _minutes_entries(ORDINARY_MONTH), context=ctx)
    (line,) = invoice_lines(work, context=ctx, period="2026-10")

    assert line.quantity == Decimal("8.4167")
    # Xero: round(8.4167 x 165.75 = 1395.068025, 2) = 1395.07; the exact 505/60 h would be 1395.0625.
    assert line.amount == Money.of("1395.07", "GBP")
    payload = xero_mapping.invoice_payload(_invoice("UK", "GBP", (line,)), default_account_code="200")
    (item,) = payload["LineItems"]
    assert (item["Quantity"], item["UnitAmount"], item["LineAmount"]) == (
        Decimal("8.4167"),
        Decimal("165.75"),
        Decimal("1395.07"),
    )


def test_the_same_month_in_tryton_bills_the_hours_its_unit_keeps_half_even() -> None:
    ctx = _card_at("165.75", "EU")
    work = rate_time(RatedWork(), _minutes_entries(ORDINARY_MONTH), context=ctx)
    (line,) = invoice_lines(work, context=ctx, period="2026-10")

    assert line.quantity == Decimal("8.42")
    # 8.42 x 165.75 = 1395.615 exactly: Tryton's currency.round goes half-even, to 1395.62.
    assert line.amount == Money.of("1395.62", "EUR")
    assert line.rounding == "half_even"
    assert tryton_mapping.line_quantity(line.quantity, digits=2, field="q") == Decimal("8.42")


def _invoice(entity: str, currency: str, lines: tuple[InvoiceLine, ...]) -> Invoice:
    return Invoice(
        legal_entity=entity,
        customer_id="b5c2a1f0-0000-4000-8000-000000000001",
        customer_name="Fabrikam",
        project_id="p1",
        period="2026-10",
        currency=currency,
        issue_date=date(2026, 10, 31),
        due_date=date(2026, 11, 30),
        reference="PS-p1-2026-10",
        lines=lines,
    )


def test_xero_refuses_a_line_it_would_round_instead_of_booking_another_total() -> None:
    line = InvoiceLine(
        description="Consulting",
        quantity=Decimal(505) / Decimal(60),
        unit_price=Money.of("165.75", "GBP"),
        tax_code="OUTPUT2",
    )
    with pytest.raises(Rejected) as raised:
        xero_mapping.invoice_payload(_invoice("UK", "GBP", (line,)), default_account_code="200")
    assert [e.field for e in raised.value.field_errors] == ["LineItems[0].Quantity"]


def test_tryton_refuses_a_quantity_beyond_its_units_digits_and_sends_the_rest_as_decimal() -> None:
    assert tryton_mapping.line_quantity(Decimal("0.3333"), digits=4, field="q") == Decimal("0.3333")
    with pytest.raises(Rejected) as raised:
        tryton_mapping.line_quantity(Decimal("0.4167"), digits=2, field="lines[0].quantity")
    assert raised.value.field_errors[0].field == "lines[0].quantity"


def test_each_entitys_rule_matches_what_its_connector_sends_and_config_sets() -> None:
    rules = {e.code: rounding_rule(e) for e in default_entities()}
    assert (rules["UK"].quantity_places, rules["UK"].unit_price_places) == (
        xero_mapping.QUANTITY_PLACES,
        xero_mapping.UNIT_AMOUNT_PLACES,
    )
    assert rules["UK"] == RoundingRule(quantity_places=4, unit_price_places=4, line_rounding="half_up")
    assert rules["EU"] == RoundingRule(quantity_places=2, unit_price_places=4, line_rounding="half_even")


def test_an_entity_that_sets_no_places_gets_two_of_each_which_any_erp_stores() -> None:
    uk = next(e for e in default_entities() if e.code == "UK")
    configured = {
        k: v for k, v in uk.model_dump().items() if k not in ("quantity_places", "unit_price_places")
    }
    entity = type(uk).model_validate({**configured, "erp": "other"})
    assert (rounding_rule(entity).quantity_places, rounding_rule(entity).unit_price_places) == (2, 2)


@given(
    st.integers(min_value=1, max_value=10**9),
    st.integers(min_value=0, max_value=8),
    st.integers(min_value=0, max_value=6),
)
def test_round_places_keeps_a_short_value_as_written_and_rounds_a_long_one_half_up(
    units: int, exponent: int, places: int
) -> None:
    value = Decimal(units).scaleb(-exponent)
    rounded = round_places(value, places)
    assert rounded == value.quantize(Decimal(1).scaleb(-places), rounding="ROUND_HALF_UP")
    if exponent <= places:
        assert str(rounded) == str(value)
    assert "E" not in str(rounded)


@given(st.integers(min_value=100, max_value=60_000), st.integers(min_value=1, max_value=6000))
def test_a_lines_difference_from_its_exact_value_is_within_the_stated_bound(cents: int, minutes: int) -> None:
    price = Money(amount=Decimal(cents) / 100, currency="GBP")
    for places in (2, 4):
        rule = RoundingRule(quantity_places=places, unit_price_places=4, line_rounding="half_even")
        exact = Fraction(minutes, 60) * Fraction(cents, 100)
        billed = Fraction(rule.line_amount(Decimal(minutes) / Decimal(60), price).amount)
        assert abs(exact - billed) <= Fraction(rule.max_line_difference(price))
        assert rule.max_line_difference(price) == price.amount * Decimal(5).scaleb(-places - 1) + Decimal(
            "0.005"
        )
