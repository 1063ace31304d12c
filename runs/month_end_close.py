"""What a MonthEndClose run takes: one legal entity and the period to close."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

WORKFLOW_TYPE = "MonthEndClose"
PROCESS = "month_end"


def workflow_id(legal_entity: str, period: str) -> str:
    """One close per entity and period at a time: a second start while one runs is refused by Temporal."""
    return f"month-end-close:{legal_entity}:{period}"


class MonthEndCloseInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    legal_entity: str
    # None: the month before the run started (what the monthly schedule closes).
    period: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    psa: str
    projects_per_batch: int = Field(default=25, ge=1)
