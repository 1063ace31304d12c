"""Approved time as month-end values it: billable or not, billed or not, with the bill rate the PSA priced it
at and the person's cost rate in force when it was logged."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from canonical.money import Money


class CostedTimeEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    person_id: str
    role: str | None = None
    date: date
    minutes: int = Field(ge=0)
    billable: bool
    billed: bool = False
    invoice_number: str | None = None
    bill_rate: Money | None = None
    # The person's hourly cost rate the PSA held when the time was logged; None: the PSA kept none.
    cost_rate: Money | None = None
