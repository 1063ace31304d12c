"""JSON whose numbers keep every digit, as the vendors' money needs.

Salesforce, Kantata and Xero all carry amounts as JSON numbers, and RFC 8259 leaves their precision to the
reader. Reading them as Decimal and writing a Decimal from its own digits means the sandbox stores and
answers exactly what was sent: a float on either path would turn 924.975 into 924.97499999999990905...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def loads(data: bytes | str) -> Any:
    return json.loads(data, parse_float=Decimal)


def dumps(value: Any) -> str:
    """Compact JSON; a Decimal is written digit for digit and a float is refused, never rounded."""
    if isinstance(value, float):
        raise TypeError(f"refusing float {value!r}: a sandbox writes amounts from Decimal so no cent moves")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON number form")
        return format(value, "f")
    if value is None or isinstance(value, bool | int | str):
        return json.dumps(value)
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{json.dumps(str(key))}:{dumps(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps(item) for item in value) + "]"
    raise TypeError(f"{type(value).__name__} has no JSON form")
