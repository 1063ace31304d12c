"""A project's margin at a month-end: revenue recognised, labour cost, what was billed and the WIP, to date
and for the period."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from pydantic import BaseModel, ConfigDict

from canonical import Money


class MarginSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    period: str
    currency: str
    revenue: Money
    revenue_in_period: Money
    labour_cost: Money
    labour_cost_in_period: Money
    billed: Money
    # Unbilled time at bill rates at the period's end (time and materials).
    wip: Money
    margin: Money
    margin_in_period: Money
    # Margin as a percentage of revenue to date, to one decimal; None without revenue.
    margin_percent: Decimal | None
    # Time left out of labour cost for want of a cost rate: the margin is overstated by its cost.
    uncosted_minutes: int = 0


def margin_summary(
    *,
    project_id: str,
    period: str,
    revenue: Money,
    revenue_before: Money,
    labour_cost: Money,
    labour_cost_before: Money,
    billed: Money,
    wip: Money,
    uncosted_minutes: int,
) -> MarginSummary:
    margin = revenue - labour_cost
    percent = None
    if not revenue.is_zero():
        percent = (margin.amount * 100 / revenue.amount).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    return MarginSummary(
        project_id=project_id,
        period=period,
        currency=revenue.currency,
        revenue=revenue,
        revenue_in_period=revenue - revenue_before,
        labour_cost=labour_cost,
        labour_cost_in_period=labour_cost - labour_cost_before,
        billed=billed,
        wip=wip,
        margin=margin,
        margin_in_period=(revenue - revenue_before) - (labour_cost - labour_cost_before),
        margin_percent=percent,
        uncosted_minutes=uncosted_minutes,
    )
