"""JSON whose numbers keep every digit, as the vendors' money needs.

Salesforce, Kantata and Xero all carry amounts as JSON numbers, and RFC 8259 leaves their precision to the
reader. Reading them as Decimal and writing a Decimal from its own digits means the sandbox stores and
answers exactly what was sent: a float on either path would turn 924.975 into 924.97499999999990905...
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def loads(data: bytes | str) -> Any:
    return json.loads(data, parse_float=Decimal)


def dumps(value: Any) -> str:
    """Compact JSON; a Decimal is written digit for digit and a float is refused, never rounded.

    The C encoder writes the document with each Decimal standing in as a marked string, and the marks are
    then swapped for the digits: a listing of a few thousand records is encoded at C speed rather than
    value by value. The mark carries a per-process nonce, so no text a client sent can pass for one.
    """
    text = json.dumps(_plain(value), separators=(",", ":"))
    return _MARKED.sub(r"\1", text) if _OPEN in text else text


_NONCE = secrets.token_hex(8)
_OPEN, _CLOSE = f"exact-decimal-{_NONCE}(", f")-{_NONCE}"
_MARKED = re.compile(re.escape(f'"{_OPEN}') + r"(-?[0-9]+(?:\.[0-9]+)?)" + re.escape(f'{_CLOSE}"'))


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} has no JSON number form")
        return f"{_OPEN}{format(value, 'f')}{_CLOSE}"
    if isinstance(value, float):
        raise TypeError(f"refusing float {value!r}: a sandbox writes amounts from Decimal so no cent moves")
    raise TypeError(f"{type(value).__name__} has no JSON form")
