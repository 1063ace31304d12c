"""Xero's wire formats: JSON numbers that stay exact, and the `/Date(…)/` timestamps.

Money travels as JSON numbers. Python's json module would go through float on both sides, so numbers
are read as Decimal and written from the Decimal's own digits: 924.975 leaves as 924.975, never as
924.9749999999.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from connectors import exact_json

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def dumps(value: Any) -> bytes:
    """JSON with Decimal written as an exact number. Floats are refused: they have already lost the cents."""
    return exact_json.dumps(value, vendor="Xero")


def loads(raw: bytes | str) -> Any:
    """Parse JSON keeping every non-integer number as an exact Decimal."""
    return exact_json.loads(raw)


def ms_timestamp(moment: datetime) -> str:
    """`/Date(1573755038314+0000)/`: milliseconds since the epoch, as Xero writes UpdatedDateUTC."""
    if moment.tzinfo is None:
        raise ValueError("Xero timestamps are UTC: pass an aware datetime")
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def ms_date(day: date) -> str:
    """A calendar date as Xero writes Date and DueDate: midnight UTC in `/Date(…)/` form."""
    return ms_timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC))


def parse_ms_timestamp(value: str) -> datetime:
    """Read `/Date(ms)/` or `/Date(ms+hhmm)/`. The offset only says how Xero displayed it: ms are UTC."""
    match = _MS_DATE.match(value.strip())
    if match is None:
        raise ValueError(f"not a Xero /Date(...)/ timestamp: {value!r}")
    return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)


def parse_xero_date(value: str) -> date:
    """A date field as Xero returns it (`/Date(…)/`) or as clients send it (`YYYY-MM-DD[Thh:mm:ss]`)."""
    if value.startswith("/Date("):
        return parse_ms_timestamp(value).date()
    return date.fromisoformat(value[:10])
