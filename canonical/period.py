"""A billing period is a calendar month, written 'YYYY-MM'."""

from __future__ import annotations

import calendar
from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Period(BaseModel):
    model_config = ConfigDict(frozen=True)

    value: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")

    @classmethod
    def of(cls, day: date) -> Period:
        return cls(value=f"{day.year:04d}-{day.month:02d}")

    @property
    def first_day(self) -> date:
        year, month = (int(part) for part in self.value.split("-"))
        return date(year, month, 1)

    @property
    def last_day(self) -> date:
        first = self.first_day
        return date(first.year, first.month, calendar.monthrange(first.year, first.month)[1])

    def contains(self, day: date) -> bool:
        return self.first_day <= day <= self.last_day

    def __str__(self) -> str:
        return self.value
