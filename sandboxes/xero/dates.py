"""Xero's JSON dates, `/Date(1439434356790+0000)/`: milliseconds since the Unix epoch.

developer.xero.com/documentation/api/accounting/requests-and-responses: the Accounting API answers with
Microsoft .NET JSON dates; the count is UTC and the `+0000` only records the zone it is shown in. Date
fields (Date, DueDate) are midnight UTC of the day. Requests may carry the same form or ISO 8601
(`2009-05-27` or `2009-05-27T00:00:00`).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_NET_JSON = re.compile(r"/Date\((?P<ms>-?\d+)(?:[+-]\d{4})?\)/")


def net_json(milliseconds: int) -> str:
    return f"/Date({milliseconds}+0000)/"


def milliseconds(moment: datetime) -> int:
    # Whole-millisecond arithmetic: going through a float timestamp can drop a millisecond.
    return (moment - EPOCH) // _ONE_MS


def net_json_day(day: date) -> str:
    return net_json((day - EPOCH.date()).days * 86_400_000)


def parse_request_date(value: str) -> date:
    """The day a request names, in either form Xero accepts; ValueError for anything else."""
    match = _NET_JSON.fullmatch(value)
    if match is not None:
        return (EPOCH + int(match["ms"]) * _ONE_MS).date()
    return datetime.fromisoformat(value).date()
