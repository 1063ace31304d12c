"""Money: a Decimal amount with an ISO 4217 currency. Never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

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


def total(amounts: list[Money], currency: str) -> Money:
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
