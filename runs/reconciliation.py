"""What a Reconciliation run takes: the entities and the period to hold source against target."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from canonical import LegalEntity

WORKFLOW_TYPE = "Reconciliation"


class ReconciliationInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    entities: tuple[LegalEntity, ...]
    # None: the month before the run started (what the schedule reconciles).
    period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    psa: str
    # Approved work still unbilled this many days after its period closed is a difference, not work in flight.
    unbilled_grace_days: int = 5
    projects_per_batch: int = 25
