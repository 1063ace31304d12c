"""Revenue recognition for fixed-fee and retainer contracts: revenue recognised to date, and the journal
that moves the project's accrued or deferred revenue from where the last close left it to where it is now.

Invoices book to revenue when they are posted, so revenue in the ledger is what was invoiced; this journal
adds the difference between recognised and invoiced to date (positive: accrued revenue, an asset; negative:
deferred revenue, a liability), less the difference the earlier closes already booked. Revenue for the
period is then the invoices of the period plus this journal's revenue line, which is recognised to date less
recognised before. Every figure is to date, so a period can be re-run and the periods never drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from canonical import ExceptionOwner, Money, Period
from canonical.money import minor_units
from domain.month_end.exact import exact, rounded_quotient
from domain.month_end.inputs import (
    MilestoneAcceptance,
    MonthEndProject,
    PercentageOfCompletion,
    StraightLineRetainer,
)
from domain.month_end.journal import AccountRole, Finding, Journal, JournalKind, JournalLine, moving
from domain.month_end.sources import SourceRefs, source_id

# A common multiple of every month's length (28, 29, 30 and 31 days): partial months of a retainer add up
# over it exactly.
_MONTH_LENGTHS = math.lcm(28, 29, 30, 31)


@dataclass(frozen=True)
class Recognised:
    """Revenue recognised to date, what it was computed from, and anything that stopped part of it."""

    amount: Money
    basis: str
    sources: tuple[str, ...]
    findings: tuple[Finding, ...] = ()


def percentage_of_completion(project: MonthEndProject, terms: PercentageOfCompletion) -> Recognised:
    """fee x min(1, hours to date / budget hours), half-up to the minor unit; every approved hour counts,
    billable or not, because the budget is the effort the fee pays for."""
    time = project.time_to_date()
    minutes = sum(entry.minutes for entry in time)
    places = minor_units(project.currency)
    with exact():
        budget_minutes = terms.budget_hours * 60
        if minutes >= budget_minutes:
            amount = terms.fee.amount
        else:
            amount = rounded_quotient(terms.fee.amount * minutes, budget_minutes, places)
    hours = rounded_quotient(Decimal(minutes), 60, 2)
    return Recognised(
        amount=Money(amount=amount, currency=project.currency),
        basis=f"{hours} of {terms.budget_hours} budget hours of a {terms.fee} fee",
        sources=tuple(source_id("time", entry.id) for entry in time),
    )


def milestone_acceptance(project: MonthEndProject, terms: MilestoneAcceptance) -> Recognised:
    """The amounts of milestones accepted by the period's end, never more than the fee."""
    end = project.closing.last_day
    accepted = [m for m in project.milestones if m.accepted_on is not None and m.accepted_on <= end]
    accepted_total = sum((m.amount.amount for m in accepted), Decimal(0))
    sources = tuple(source_id("milestone", m.id) for m in accepted)
    findings: tuple[Finding, ...] = ()
    amount = accepted_total
    if accepted_total > terms.fee.amount:
        amount = terms.fee.amount
        findings = (
            Finding(
                project_id=project.project_id,
                rule="milestones_exceed_fee",
                owner=ExceptionOwner.FINANCE,
                reason=f"accepted milestones of project {project.project_id} add up to {accepted_total} "
                f"{project.currency}, more than its {terms.fee} fee; revenue is recognised up to the fee "
                "until the schedule or the fee is corrected",
                sources=SourceRefs.of(sources),
            ),
        )
    return Recognised(
        amount=Money(amount=amount, currency=project.currency),
        basis=f"{len(accepted)} accepted milestone(s) of a {terms.fee} fee",
        sources=sources,
        findings=findings,
    )


def _months(start: date, last: date) -> list[Period]:
    months, month = [], Period.of(start)
    while month.first_day <= last:
        months.append(month)
        month = Period.of(month.last_day + timedelta(days=1))
    return months


def straight_line(project: MonthEndProject, terms: StraightLineRetainer) -> Recognised:
    """The amount for every month of the term up to the period's end; a month the term starts or ends in
    earns amount x (days of the term in it) / (days in the month). Summed exactly, rounded half-up once."""
    end = project.closing.last_day
    last = end if terms.end is None else min(terms.end, end)
    numerator, months = Decimal(0), []
    with exact():
        for month in _months(terms.start, last) if terms.start <= last else []:
            first_day = max(month.first_day, terms.start)
            last_day = min(month.last_day, last)
            days = (last_day - first_day).days + 1
            length = month.last_day.day
            numerator += terms.amount_per_period.amount * days * (_MONTH_LENGTHS // length)
            months.append(month)
    amount = rounded_quotient(numerator, _MONTH_LENGTHS, minor_units(project.currency))
    return Recognised(
        amount=Money(amount=amount, currency=project.currency),
        basis=f"{terms.amount_per_period} a month from {terms.start}"
        + (f" to {terms.end}" if terms.end is not None else ""),
        sources=tuple(source_id("retainer", month.value) for month in months),
    )


def recognised_to_date(project: MonthEndProject) -> Recognised | None:
    """Revenue recognised to date under the project's terms; None for time and materials, whose revenue is
    its invoices plus WIP."""
    terms = project.terms
    if isinstance(terms, PercentageOfCompletion):
        return percentage_of_completion(project, terms)
    if isinstance(terms, MilestoneAcceptance):
        return milestone_acceptance(project, terms)
    if isinstance(terms, StraightLineRetainer):
        return straight_line(project, terms)
    return None


def _accrued(position: Decimal) -> Decimal:
    return max(position, Decimal(0))


def _deferred(position: Decimal) -> Decimal:
    return max(-position, Decimal(0))


def revenue_position(recognised: Money, invoiced: Money) -> Money:
    """Accrued (positive) or deferred (negative) revenue: recognised less invoiced."""
    return recognised - invoiced


def recognition_journal(project: MonthEndProject, recognised: Recognised) -> Journal:
    """Moves accrued or deferred revenue from the earlier closes' position to recognised less invoiced."""
    currency = project.currency
    invoiced = project.invoiced()
    now = revenue_position(recognised.amount, invoiced).amount
    before = project.earlier.revenue_position.amount
    drivers = SourceRefs.of(recognised.sources)
    with_invoices = SourceRefs.of(
        (*recognised.sources, *(source_id("invoice", i.number) for i in project.invoices_to_date()))
    )
    summary = (
        f"recognised to date {recognised.amount} ({recognised.basis}), invoiced {invoiced}; "
        f"position {before} {currency} at the last close"
    )
    lines = moving(
        [
            JournalLine(
                role=AccountRole.REVENUE,
                project_id=project.project_id,
                amount=Money(amount=before - now, currency=currency),
                description=f"Revenue recognition {project.period}: {summary}",
                sources=drivers,
            ),
            JournalLine(
                role=AccountRole.ACCRUED_REVENUE,
                project_id=project.project_id,
                amount=Money(amount=_accrued(now) - _accrued(before), currency=currency),
                description=f"Accrued revenue {project.period}: recognised ahead of invoicing",
                sources=with_invoices,
            ),
            JournalLine(
                role=AccountRole.DEFERRED_REVENUE,
                project_id=project.project_id,
                amount=Money(amount=_deferred(before) - _deferred(now), currency=currency),
                description=f"Deferred revenue {project.period}: invoiced ahead of recognition",
                sources=with_invoices,
            ),
        ]
    )
    return Journal(
        legal_entity=project.legal_entity,
        project_id=project.project_id,
        period=project.period,
        kind=JournalKind.RECOGNITION,
        date=project.closing.last_day,
        currency=currency,
        lines=lines,
    )
