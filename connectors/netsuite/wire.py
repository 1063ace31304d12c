"""NetSuite's JSON as money needs it: numbers read as Decimal and written digit for digit.

REST web services carry amounts as JSON numbers. Python's json module would go through float both ways, so a
rate of 0.335 could leave as 0.33500000000000002; numbers are read as Decimal and a Decimal is written from
its own digits. A float is refused: it has already lost the cents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from connectors import exact_json


def dumps(value: Any) -> bytes:
    """JSON with Decimal written as an exact number. Floats are refused: they have already lost the cents."""
    return exact_json.dumps(value, vendor="NetSuite")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal."""
    return exact_json.loads(raw)


def decimal(value: Any) -> Decimal:
    """A number NetSuite sent as a JSON number or, as SuiteQL does, as a string ("6.00%" for a tax rate)."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"expected a number from NetSuite, got {value!r}")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        text = value.strip().removesuffix("%").replace(",", "")
        return Decimal(text)
    raise ValueError(f"expected a number from NetSuite, got {value!r}")
