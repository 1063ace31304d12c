"""An organisation's lock dates (Xero: Accounting, Advanced, Financial settings, Lock dates).

The period lock date stops everyone but advisers, the end of year lock date stops everyone, from changing
anything dated on or before it. GET /Organisation shows each one only when it is set (`PeriodLockDate`,
`EndOfYearLockDate`, as `/Date(…)/`). A document dated on or before one is refused with a ValidationException
whose messages name the date as Xero writes it, one message per lock date that applies:

    The document date cannot be before the period lock date, currently set at 30-Nov-2018
    The document date cannot be before the end of year lock date, currently set at 30-Nov-2018

(as integrations quote Xero's replies, e.g. xeroizer issue 92 and vendors' "Xero error" help pages).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict

from sandboxes.store import Collection
from sandboxes.xero.dates import net_json_day

_DOC = "lock_dates"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Stored key, the field GET /Organisation shows, and how Xero's message names the lock date.
_LOCKS = (
    ("period", "PeriodLockDate", "period lock date"),
    ("end_of_year", "EndOfYearLockDate", "end of year lock date"),
)


class LockDateSettings(BaseModel):
    """What PUT /_sandbox/lock-dates sets (None clears one), as finance would in Xero's settings."""

    model_config = ConfigDict(frozen=True)

    period_lock_date: date | None = None
    end_of_year_lock_date: date | None = None


def xero_day(day: date) -> str:
    """A date as Xero's validation messages write it: 30-Nov-2018 (whatever the server's locale)."""
    return f"{day.day:02d}-{_MONTHS[day.month - 1]}-{day.year}"


class LockDates:
    def __init__(self, settings: Collection) -> None:
        self._settings = settings

    def _stored(self) -> dict[str, Any]:
        return self._settings.get(_DOC) or {}

    def set(self, *, period: date | None, end_of_year: date | None) -> None:
        self._settings.put(
            _DOC,
            {
                "period": period.isoformat() if period else None,
                "end_of_year": end_of_year.isoformat() if end_of_year else None,
            },
        )

    def _dates(self) -> list[tuple[date, str, str]]:
        stored = self._stored()
        return [
            (date.fromisoformat(stored[key]), field, words) for key, field, words in _LOCKS if stored.get(key)
        ]

    def organisation_fields(self) -> dict[str, str]:
        """The lock dates GET /Organisation shows, only those that are set."""
        return {field: net_json_day(day) for day, field, _ in self._dates()}

    def refusals(self, day: date) -> list[str]:
        """Xero's messages for a document dated `day`: one per lock date it falls on or before."""
        return [
            f"The document date cannot be before the {words}, currently set at {xero_day(locked)}"
            for locked, _, words in self._dates()
            if day <= locked
        ]
