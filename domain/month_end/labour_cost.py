"""Labour cost: every approved hour on a project, billable or not, at the person's cost rate in force on the
day it was worked, charged to the project's labour cost and credited to cost clearing.

Cost to date is summed exactly (minutes x hourly rate / 60 per entry) and rounded half-up once; the journal
posts cost to date less what earlier closes costed, in two lines: the period's own time, and a catch-up for
time dated in earlier periods that was approved, or re-rated, after they closed. Time with no cost rate in
force on its day is not costed at zero but reported, and costed by the first close after its rate is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from canonical import ExceptionOwner, Money
from canonical.money import minor_units
from domain.month_end.exact import exact, rounded_quotient
from domain.month_end.inputs import MonthEndProject, WorkedTime
from domain.month_end.journal import AccountRole, Finding, Journal, JournalKind, JournalLine, moving
from domain.month_end.sources import SourceRefs, source_id


@dataclass(frozen=True)
class LabourCost:
    to_date: Money
    # Cost of the time dated before the period, as it is rated now.
    before_period: Money
    period_ids: tuple[str, ...]
    earlier_ids: tuple[str, ...]
    uncosted_minutes: int
    findings: tuple[Finding, ...]


def _uncosted(project: MonthEndProject, rule: str, entries: list[WorkedTime], why: str) -> Finding:
    minutes = sum(entry.minutes for entry in entries)
    return Finding(
        project_id=project.project_id,
        rule=rule,
        owner=ExceptionOwner.FINANCE,
        reason=f"{len(entries)} approved time entr{'y' if len(entries) == 1 else 'ies'} ({minutes} minutes) "
        f"of project {project.project_id} {why}: left out of labour cost until the rate is set right",
        sources=SourceRefs.of(source_id("time", entry.id) for entry in entries),
    )


def labour_cost(project: MonthEndProject) -> LabourCost:
    histories = {history.person: history for history in project.cost_rates}
    period_start = project.closing.first_day
    no_rate: list[WorkedTime] = []
    wrong_currency: list[WorkedTime] = []
    period_ids: list[str] = []
    earlier_ids: list[str] = []
    all_minutes_cost, earlier_minutes_cost = Decimal(0), Decimal(0)
    with exact():
        for entry in project.time_to_date():
            history = histories.get(entry.person)
            rate = history.rate_on(entry.date) if history is not None else None
            if rate is None:
                no_rate.append(entry)
                continue
            if rate.currency != project.currency:
                wrong_currency.append(entry)
                continue
            minutes_cost = rate.amount * entry.minutes
            all_minutes_cost += minutes_cost
            if entry.date < period_start:
                earlier_minutes_cost += minutes_cost
                earlier_ids.append(source_id("time", entry.id))
            else:
                period_ids.append(source_id("time", entry.id))
    places = minor_units(project.currency)
    findings = []
    if no_rate:
        findings.append(
            _uncosted(project, "no_cost_rate", no_rate, "have no cost rate in force on their day")
        )
    if wrong_currency:
        why = f"with a cost rate in another currency than the project's {project.currency}"
        findings.append(_uncosted(project, "currency_mismatch", wrong_currency, why))
    return LabourCost(
        to_date=Money(amount=rounded_quotient(all_minutes_cost, 60, places), currency=project.currency),
        before_period=Money(
            amount=rounded_quotient(earlier_minutes_cost, 60, places), currency=project.currency
        ),
        period_ids=tuple(period_ids),
        earlier_ids=tuple(earlier_ids),
        uncosted_minutes=sum(entry.minutes for entry in (*no_rate, *wrong_currency)),
        findings=tuple(findings),
    )


def labour_cost_journal(project: MonthEndProject, cost: LabourCost) -> Journal:
    """Cost to date less what earlier closes costed; the period's line takes the rounding residual, so the
    cumulative cost is always cost to date rounded once."""
    costed_before = project.earlier.labour_cost
    period = project.period
    lines = moving(
        [
            JournalLine(
                role=AccountRole.LABOUR_COST,
                project_id=project.project_id,
                amount=cost.to_date - cost.before_period,
                description=f"Labour cost {period}: time worked in {period} at the cost rates in force",
                sources=SourceRefs.of(cost.period_ids),
            ),
            JournalLine(
                role=AccountRole.LABOUR_COST,
                project_id=project.project_id,
                amount=cost.before_period - costed_before,
                description=f"Labour cost {period}: time dated before {period} approved or re-rated since "
                "its period closed",
                sources=SourceRefs.of(cost.earlier_ids),
            ),
            JournalLine(
                role=AccountRole.COST_CLEARING,
                project_id=project.project_id,
                amount=costed_before - cost.to_date,
                description=f"Labour cost {period} charged to project {project.project_id}",
                sources=SourceRefs.of((*cost.period_ids, *cost.earlier_ids)),
            ),
        ]
    )
    return Journal(
        legal_entity=project.legal_entity,
        project_id=project.project_id,
        period=period,
        kind=JournalKind.LABOUR_COST,
        date=project.closing.last_day,
        currency=project.currency,
        lines=lines,
    )
