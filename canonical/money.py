"""Money: a Decimal amount with an ISO 4217 currency. Never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

# ISO 4217 minor units for the currencies a services firm is likely to bill in;
# anything else defaults to 2, which is right for almost every currency.
_MINOR_UNITS = {"JPY": 0, "KRW": 0, "ISK": 0, "CLP": 0, "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3}


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def _reject_float(value: Any) -> Any:
    # A float has already lost the cents; refusing it keeps money exact end to end.
    if isinstance(value, float):
        raise ValueError("money amounts must be Decimal or str, never float")
    return value


ExactDecimal = Annotated[Decimal, BeforeValidator(_reject_float)]

# How an ERP rounds a line amount to the cent: Xero half-up, Tryton half-even (its currency.round).
LineRounding = Literal["half_up", "half_even"]
_ROUNDING = {"half_up": ROUND_HALF_UP, "half_even": ROUND_HALF_EVEN}


class Money(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: ExactDecimal
    currency: str

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha() or not value.isupper():
            raise ValueError(f"currency must be an ISO 4217 code like 'GBP', got {value!r}")
        return value

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(amount=Decimal(0), currency=currency)

    @classmethod
    def of(cls, amount: str | int | Decimal, currency: str) -> Money:
        return cls(amount=Decimal(amount), currency=currency)

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> Money:
        return Money(amount=-self.amount, currency=self.currency)

    def times(self, factor: Decimal | int) -> Money:
        if isinstance(factor, float):
            raise TypeError("multiply money by Decimal, never float")
        return Money(amount=self.amount * factor, currency=self.currency)

    def rounded(self, rounding: LineRounding = "half_up") -> Money:
        """Round to the currency's minor unit, half-up unless the ERP rounds otherwise."""
        quantum = Decimal(1).scaleb(-minor_units(self.currency))
        return Money(
            amount=self.amount.quantize(quantum, rounding=_ROUNDING[rounding]), currency=self.currency
        )

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def is_zero(self) -> bool:
        return self.amount == 0

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


def places_of(value: Decimal) -> int:
    """How many decimals `value` is written with (8.50 has 2, 8 and 8E+1 have 0)."""
    exponent = value.as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _tidy(value: Decimal) -> Decimal:
    # Rounding 8.419999 to 4 places gives 8.4200; the ERP stores 8.42, and so do we (8, never 8E+0).
    reduced = value.normalize()
    exponent = reduced.as_tuple().exponent
    return reduced.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else reduced


def round_places(value: Decimal, places: int, rounding: LineRounding = "half_up") -> Decimal:
    """`value` with at most `places` decimals; a value already that short is returned as it was written."""
    if places_of(value) <= places:
        return value
    return _tidy(value.quantize(Decimal(1).scaleb(-places), rounding=_ROUNDING[rounding]))


class RoundingRule(BaseModel):
    """What an ERP stores of an invoice line and how it computes the line's amount from what it stored.

    The ERP keeps a line's quantity to `quantity_places` decimals and its unit price to `unit_price_places`,
    and books quantity x unit price rounded to the currency's minor unit with `line_rounding`. Rating rounds
    quantities and unit prices to what the ERP stores before it prices a line, so the line amount we compute
    is the one the ERP books, by construction. Quantities and unit prices round half-up (Xero rounds them so;
    Tryton refuses more digits than it stores instead of rounding, so the direction is ours to choose).
    """

    model_config = ConfigDict(frozen=True)

    quantity_places: int = Field(ge=0, le=12)
    unit_price_places: int = Field(ge=0, le=12)
    line_rounding: LineRounding = "half_up"

    def quantity(self, quantity: Decimal) -> Decimal:
        return round_places(quantity, self.quantity_places)

    def unit_price(self, price: Money) -> Money:
        return Money(amount=round_places(price.amount, self.unit_price_places), currency=price.currency)

    def line_amount(self, quantity: Decimal, unit_price: Money) -> Money:
        """What the ERP books for `quantity` x `unit_price`, both first stored as the ERP stores them."""
        return line_amount(self.quantity(quantity), self.unit_price(unit_price), self.line_rounding)

    def max_line_difference(self, unit_price: Money) -> Decimal:
        """The most a line at `unit_price` (already within `unit_price_places`) can differ from the exact
        value of its quantity: half a quantity step at that price, plus half a minor unit."""
        half_step = Decimal(5).scaleb(-self.quantity_places - 1)
        half_minor = Decimal(5).scaleb(-minor_units(unit_price.currency) - 1)
        return abs(unit_price.amount) * half_step + half_minor


def line_amount(quantity: Decimal, unit_price: Money, rounding: LineRounding) -> Money:
    """A line's amount as ERPs book it: quantity x unit price, rounded once to the currency's minor unit."""
    return unit_price.times(quantity).rounded(rounding)


def total(amounts: list[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
