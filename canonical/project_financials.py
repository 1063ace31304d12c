"""A project's financials to date as month-end leaves them, for the PSA's project view and the ops page."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from canonical.money import Money


class ProjectFinancials(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    # The month the figures are as at the end of.
    period: str
    recognised_revenue: Money
    labour_cost: Money
    billed: Money
    wip: Money
    margin: Money
