from decimal import Decimal

import pytest
from pydantic import ValidationError

from canonical import InvoiceLine, Money


def test_money_refuses_float_amounts():
    with pytest.raises(ValidationError, match="never float"):
        Money(amount=1.1, currency="GBP")  # type: ignore[arg-type]


def test_money_refuses_lowercase_or_unknown_shaped_currency():
    with pytest.raises(ValidationError, match="currency"):
        Money(amount=Decimal(1), currency="gbp")


def test_money_refuses_mixing_currencies():
    with pytest.raises(ValueError, match="cannot combine GBP with EUR"):
        Money.of("1", "GBP") + Money.of("1", "EUR")


def test_rounding_is_half_up_to_the_currency_minor_unit():
    assert Money.of("2.345", "GBP").rounded().amount == Decimal("2.35")
    assert Money.of("2.5", "JPY").rounded().amount == Decimal("3")
    assert Money.of("1.2345", "KWD").rounded().amount == Decimal("1.235")


def test_invoice_line_amount_is_rounded_per_line():
    line = InvoiceLine(
        description="x", quantity=Decimal("7.5"), unit_price=Money.of("123.33", "EUR"), tax_code="VAT21"
    )
    assert line.amount == Money.of("924.98", "EUR")


def test_money_survives_json_round_trip_exactly():
    money = Money.of("12345678.9012", "GBP")
    assert Money.model_validate_json(money.model_dump_json()) == money
