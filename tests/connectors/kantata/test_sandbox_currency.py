"""The Kantata sandbox's own subunit arithmetic, checked against ISO 4217's minor units."""

from __future__ import annotations

from decimal import Decimal

import pytest

from sandboxes.kantata.currency import base_unit, from_subunits, to_subunits


@pytest.mark.parametrize(
    ("currency", "amount", "subunits", "shown", "unit"),
    [
        ("USD", "1234.56", 123456, "1234.56", 100),
        ("GBP", "0.5", 50, "0.50", 100),
        ("JPY", "1500", 1500, "1500", 1),
        ("KWD", "12.345", 12345, "12.345", 1000),
    ],
)
def test_amounts_are_whole_subunits(currency: str, amount: str, subunits: int, shown: str, unit: int) -> None:
    assert to_subunits(Decimal(amount), currency) == subunits
    assert from_subunits(subunits, currency) == shown
    assert base_unit(currency) == unit


@pytest.mark.parametrize(("currency", "amount"), [("USD", "0.125"), ("JPY", "1.5"), ("EUR", "Infinity")])
def test_an_amount_finer_than_one_subunit_is_refused(currency: str, amount: str) -> None:
    with pytest.raises(ValueError):
        to_subunits(Decimal(amount), currency)
