"""Exact arithmetic for month-end figures: sums that never round, and one rounding from an exact quotient.

A figure such as 505 minutes at 61.37 an hour is 505 x 61.37 / 60, which no Decimal holds exactly; it is
carried as an exact numerator over a whole-number denominator and rounded once, here, to the minor unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal, Inexact, localcontext

from canonical.money import LineRounding

# Enough digits for any sum of money times minutes a project can reach; Inexact is trapped, so a sum that
# would need more raises instead of rounding silently.
_EXACT_DIGITS = 80


@contextmanager
def exact() -> Iterator[None]:
    """Decimal arithmetic inside the block is exact or raises `decimal.Inexact`."""
    with localcontext() as context:
        context.prec = _EXACT_DIGITS
        context.traps[Inexact] = True
        yield


def rounded_quotient(
    numerator: Decimal, denominator: Decimal | int, places: int, rounding: LineRounding = "half_up"
) -> Decimal:
    """numerator / denominator rounded once to `places` decimals (half-up: halves away from zero)."""
    if denominator == 0:
        raise ZeroDivisionError("rounded_quotient by zero")
    top, top_scale = numerator.as_integer_ratio()
    bottom, bottom_scale = Decimal(denominator).as_integer_ratio()
    # numerator / denominator = (top * bottom_scale) / (top_scale * bottom), as whole numbers.
    dividend = top * bottom_scale * 10**places
    divisor = top_scale * bottom
    if divisor < 0:
        dividend, divisor = -dividend, -divisor
    negative = dividend < 0
    quotient, remainder = divmod(abs(dividend), divisor)
    twice = 2 * remainder
    if twice > divisor or (twice == divisor and (rounding == "half_up" or quotient % 2 == 1)):
        quotient += 1
    return Decimal(-quotient if negative else quotient).scaleb(-places)
