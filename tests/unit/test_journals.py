"""The journal model refuses what no ERP can book: lines that do not balance to zero exactly, amounts finer
than the currency's minor unit, fewer than two lines. The oracle reasons in Fractions, apart from the model's
Decimal arithmetic: a journal is acceptable iff every amount times 10^minor-units is a whole number and the
amounts sum to exactly zero."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from canonical import Money
from canonical.dimensions import DimensionValue
from canonical.journals import (
    Journal,
    JournalLine,
    first_day_of_next_period,
    is_whole_minor_units,
    reference_of,
)

# Currencies with 0, 2 and 3 minor-unit decimals (ISO 4217), written out here rather than read from the code.
DECIMALS = {"JPY": 0, "GBP": 2, "EUR": 2, "USD": 2, "KWD": 3, "BHD": 3}
currencies = st.sampled_from(sorted(DECIMALS))


def _line(amount: Decimal, currency: str, account: str = "310") -> JournalLine:
    return JournalLine(
        account_code=account,
        description="Labour cost",
        amount=Money(amount=amount, currency=currency),
        dimensions=(DimensionValue(dimension="project", code="P1", name="Website rebuild"),),
        source="time:1,time:2",
    )


def _journal(amounts: list[Decimal], currency: str, on: date = date(2026, 11, 30)) -> Journal:
    return Journal(
        reference="LABOUR-UK-2026-11",
        legal_entity="UK",
        date=on,
        narration="Labour cost November",
        currency=currency,
        lines=tuple(_line(amount, currency) for amount in amounts),
    )


def _acceptable(amounts: list[Decimal], currency: str) -> bool:
    scale = 10 ** DECIMALS[currency]
    whole = all((Fraction(amount) * scale).denominator == 1 for amount in amounts)
    return len(amounts) >= 2 and whole and sum(Fraction(amount) for amount in amounts) == 0


# Minor units, and odd-minute values (minutes x an hourly rate in cents / 60) that are rarely whole cents.
minor_amounts = st.integers(min_value=-(10**9), max_value=10**9).filter(lambda n: n != 0)
odd_minutes = st.integers(min_value=1, max_value=100_000).filter(lambda m: m % 2 == 1)
rates = st.integers(min_value=1, max_value=50_000)


@st.composite
def amounts_and_currency(draw: st.DrawFn) -> tuple[list[Decimal], str]:
    currency = draw(currencies)
    places = DECIMALS[currency]
    amounts: list[Decimal] = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        if draw(st.booleans()):
            amounts.append(Decimal(draw(minor_amounts)).scaleb(-places))
        else:
            # A cost of odd minutes at a rate, carried to one more decimal than the currency keeps.
            minutes, rate = draw(odd_minutes), draw(rates)
            value = (Decimal(minutes * rate) / 60).quantize(Decimal(1).scaleb(-places - 1))
            amounts.append(value if value != 0 else Decimal(1))
    if draw(st.booleans()):
        # Balance the lines with one more: the journal then stands or falls on its minor units alone.
        balance = -sum(amounts, Decimal(0))
        if balance != 0:
            amounts.append(balance)
    return amounts, currency


@given(amounts_and_currency())
def test_a_journal_is_accepted_exactly_when_it_balances_in_whole_minor_units(
    case: tuple[list[Decimal], str],
) -> None:
    amounts, currency = case
    if _acceptable(amounts, currency):
        journal = _journal(amounts, currency)
        positives = sum((Fraction(a) for a in amounts if a > 0), Fraction(0))
        assert Fraction(journal.total_debits.amount) == positives == Fraction(journal.total_credits.amount)
    else:
        with pytest.raises(ValidationError):
            _journal(amounts, currency)


@given(
    currencies,
    st.lists(minor_amounts, min_size=1, max_size=8),
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
)
def test_a_reversal_negates_every_line_and_opens_the_next_period(
    currency: str, minors: list[int], on: date
) -> None:
    places = DECIMALS[currency]
    amounts = [Decimal(n).scaleb(-places) for n in minors]
    amounts.append(-sum(amounts, Decimal(0)))
    amounts = [a for a in amounts if a != 0]
    if len(amounts) < 2:
        return
    journal = _journal(amounts, currency, on)

    reversal = journal.reversal("LABOUR-UK-2026-11-REV")

    assert [Fraction(line.amount.amount) for line in reversal.lines] == [-Fraction(a) for a in amounts]
    assert reversal.total_debits == journal.total_credits
    next_month = (on.year + 1, 1) if on.month == 12 else (on.year, on.month + 1)
    assert (reversal.date.year, reversal.date.month, reversal.date.day) == (*next_month, 1)
    assert first_day_of_next_period(on) == reversal.date
    assert [line.source for line in reversal.lines] == [line.source for line in journal.lines]


@given(currencies, st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=0, max_value=6))
def test_whole_minor_units_agrees_with_the_fraction_oracle(currency: str, digits: int, scale: int) -> None:
    amount = Decimal(digits).scaleb(-scale)
    expected = (Fraction(amount) * 10 ** DECIMALS[currency]).denominator == 1
    assert is_whole_minor_units(Money(amount=amount, currency=currency)) is expected


def test_a_journal_needs_two_lines() -> None:
    with pytest.raises(ValidationError, match="at least 2"):
        Journal(
            reference="J-1",
            legal_entity="UK",
            date=date(2026, 11, 30),
            narration="x",
            currency="GBP",
            lines=(_line(Decimal("5.00"), "GBP"),),
        )


def test_a_zero_line_and_a_dimension_named_twice_are_refused() -> None:
    with pytest.raises(ValidationError, match="zero amount"):
        _line(Decimal("0.00"), "GBP")
    project = DimensionValue(dimension="project", code="P1", name="Website rebuild")
    with pytest.raises(ValidationError, match="names a dimension twice"):
        JournalLine(
            account_code="310",
            description="x",
            amount=Money.of("1.00", "GBP"),
            dimensions=(project, project.model_copy(update={"code": "P2"})),
            source="time:1",
        )


def test_a_line_in_another_currency_is_refused() -> None:
    with pytest.raises(ValidationError, match="is in EUR, the journal in GBP"):
        Journal(
            reference="J-1",
            legal_entity="UK",
            date=date(2026, 11, 30),
            narration="x",
            currency="GBP",
            lines=(_line(Decimal("5.00"), "EUR"), _line(Decimal("-5.00"), "GBP")),
        )


def test_the_reference_leads_the_erp_narration_and_is_read_back_from_it() -> None:
    journal = _journal([Decimal("5.00"), Decimal("-5.00")], "GBP")

    assert journal.erp_narration == "LABOUR-UK-2026-11 Labour cost November"
    assert reference_of(journal.erp_narration) == journal.reference


@pytest.mark.parametrize("reference", ["", "has space", "x" * 65, "-leading-dash"])
def test_a_reference_an_erp_could_not_find_again_is_refused(reference: str) -> None:
    valid = _journal([Decimal("5.00"), Decimal("-5.00")], "GBP").model_dump()

    with pytest.raises(ValidationError):
        Journal.model_validate({**valid, "reference": reference})
