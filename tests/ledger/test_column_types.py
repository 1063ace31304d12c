from __future__ import annotations

from decimal import Decimal

import pytest

from ledger.column_types import fixed_point


def test_fixed_point_pads_to_the_scale_without_changing_the_value() -> None:
    assert str(fixed_point(Decimal("12345678.9012"), precision=18, scale=4)) == "12345678.9012"
    assert str(fixed_point(Decimal("7.5"), precision=18, scale=4)) == "7.5000"
    assert str(fixed_point(Decimal("1E+3"), precision=18, scale=4)) == "1000.0000"
    assert str(fixed_point(12, precision=18, scale=4)) == "12.0000"


def test_fixed_point_stores_negative_zero_as_zero() -> None:
    assert str(fixed_point(Decimal("-0.00"), precision=18, scale=4)) == "0.0000"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0.1, "never float"),
        (True, "never bool"),
        (Decimal("NaN"), "must be finite"),
        (Decimal("Infinity"), "must be finite"),
        ("twelve", "is not a number"),
        (Decimal("0.00001"), "more than 4 decimal places"),
        (Decimal("1E+20"), "more than 14 digits before the decimal point"),
        (Decimal("-100000000000000"), "more than 14 digits before the decimal point"),
    ],
)
def test_fixed_point_refuses_values_it_cannot_store_exactly(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fixed_point(value, precision=18, scale=4)
