"""Business-day arithmetic for approval reminders and escalations (Monday to Friday)."""

from __future__ import annotations

from datetime import datetime, timedelta


def add_business_days(start: datetime, days: int) -> datetime:
    """The instant `days` business days after `start`, keeping the time of day.

    A start on a weekend counts from the next Monday, as a person would read "two business days".
    """
    current = start
    while current.weekday() >= 5:
        current += timedelta(days=1)
    added = 0
    while added < days:
        current += timedelta(days=1)
        if current.weekday() < 5:
            added += 1
    return current
