"""JSON as money needs it, for vendors that carry amounts as JSON numbers (Xero, NetSuite).

Python's json module would go through float both ways, so a rate of 0.335 could leave as
0.33500000000000002: numbers are read as Decimal and a Decimal is written from its own digits. A float is
refused: it has already lost the cents.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any


def dumps(value: Any, *, vendor: str) -> bytes:
    return _encode(value, vendor).encode("utf-8")


def _encode(value: Any, vendor: str) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} as a JSON number")
        return format(value, "f")
    if isinstance(value, bool) or value is None or isinstance(value, int | str):
        return json.dumps(value)
    if isinstance(value, float):
        raise TypeError(f"floats are not sent to {vendor}: use Decimal so amounts stay exact")
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"{json.dumps(str(key))}:{_encode(item, vendor)}" for key, item in value.items())
            + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item, vendor) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal."""
    return json.loads(raw, parse_float=Decimal)
