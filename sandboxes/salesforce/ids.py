"""Salesforce record ids: a 3-character key prefix, 12 more characters, and a 3-character case-safe suffix.

The suffix is Salesforce's published checksum over the 15-character id (one character per block of
five, encoding which letters are upper case), so 15- and 18-character forms convert exactly as in a
real org.
"""

from __future__ import annotations

import re
import string

_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID_SHAPE = re.compile(r"^[a-zA-Z0-9]{15}([a-zA-Z0-9]{3})?$")

# The sObject key prefixes this org knows.
KEY_PREFIXES = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Task": "00T",
    "Organization": "00D",
    "OutboundMessageAction": "04k",
    "OutboundNotification": "04l",
    "QueryLocator": "01g",
}
_TYPE_BY_PREFIX = {prefix: sobject for sobject, prefix in KEY_PREFIXES.items()}


def checksum_suffix(id15: str) -> str:
    suffix = ""
    for block in range(3):
        bits = 0
        for position, char in enumerate(id15[block * 5 : block * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def to_18(record_id: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None if it is not shaped like an id."""
    if not _ID_SHAPE.match(record_id):
        return None
    id15 = record_id[:15]
    expected = id15 + checksum_suffix(id15)
    if len(record_id) == 18 and record_id.upper() != expected.upper():
        return None
    return expected


def sobject_of(record_id: str) -> str | None:
    return _TYPE_BY_PREFIX.get(record_id[:3])


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")


def make_id(sobject: str, sequence: int, *, pod: str = "8d") -> str:
    """An 18-character id for the n-th record of a type: prefix, pod, a reserved 0, base-62 sequence."""
    id15 = KEY_PREFIXES[sobject] + pod + "0" + _base62(sequence, 9)
    return id15 + checksum_suffix(id15)
