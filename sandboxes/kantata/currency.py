"""Kantata keeps money as whole subunits of the currency (`price_in_cents`, `amount_in_cents`, rates).

developer.kantata.com: a workspace's `currency_base_unit` is how many subunits make one unit (100 for USD),
which is 10 to the ISO 4217 minor-unit exponent of the currency.
"""

from __future__ import annotations

from decimal import Decimal

# ISO 4217 exponents other than 2 (the table's "minor unit" column); every other currency has two places.
_EXPONENTS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
}


def places(currency: str) -> int:
    return _EXPONENTS.get(currency, 2)


def base_unit(currency: str) -> int:
    return 10 ** places(currency)


def to_subunits(amount: Decimal, currency: str) -> int:
    """ValueError when the amount is finer than the currency's smallest unit: Kantata cannot hold it."""
    scaled = amount * base_unit(currency)
    if not scaled.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} is finer than one subunit of {currency}")
    return int(scaled)


def from_subunits(subunits: int, currency: str) -> str:
    """The decimal string Kantata shows beside a subunit amount, e.g. `price` next to `price_in_cents`."""
    return format(Decimal(subunits) / base_unit(currency), f".{places(currency)}f")
