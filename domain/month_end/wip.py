"""Unbilled WIP of a time-and-materials project: approved, billable, unbilled time at its bill rates as at
the period's end, accrued on the last day of the period and reversed on the first day of the next.

The time is valued as the invoice that will bill it would price it (domain.rating): one line per role and
bill rate, its quantity the exact sum of the minutes as hours rounded half-up to the places the entity's ERP
keeps, its amount quantity x rate rounded by the ERP's line rounding. The accrual is the whole balance each
period; the reversal clears it the next day, when billing's invoices take over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from canonical import ExceptionOwner, Money
from domain.month_end.exact import rounded_quotient
from domain.month_end.inputs import MonthEndProject, TimeAndMaterials, WorkedTime
from domain.month_end.journal import AccountRole, Finding, Journal, JournalKind, JournalLine, moving
from domain.month_end.sources import SourceRefs, source_id


@dataclass(frozen=True)
class WipLine:
    role: str
    rate: Money
    quantity: Decimal
    amount: Money
    entry_ids: tuple[str, ...]


@dataclass(frozen=True)
class Wip:
    lines: tuple[WipLine, ...]
    total: Money
    findings: tuple[Finding, ...]


def _unvalued(project: MonthEndProject, rule: str, entries: list[WorkedTime], why: str) -> Finding:
    return Finding(
        project_id=project.project_id,
        rule=rule,
        owner=ExceptionOwner.FINANCE,
        reason=f"{len(entries)} unbilled time entr{'y' if len(entries) == 1 else 'ies'} of project "
        f"{project.project_id} {why}: left out of WIP until the rate is corrected",
        sources=SourceRefs.of(source_id("time", entry.id) for entry in entries),
    )


def unbilled_wip(project: MonthEndProject) -> Wip:
    """The project's unbilled time as at the period's end, valued line by line as billing would."""
    zero = Money.zero(project.currency)
    if not isinstance(project.terms, TimeAndMaterials):
        return Wip(lines=(), total=zero, findings=())
    no_rate: list[WorkedTime] = []
    wrong_currency: list[WorkedTime] = []
    buckets: dict[tuple[str, Decimal], list[WorkedTime]] = {}
    for entry in project.time_to_date():
        if not entry.billable or entry.is_billed:
            continue
        if entry.bill_rate is None:
            no_rate.append(entry)
        elif entry.bill_rate.currency != project.currency:
            wrong_currency.append(entry)
        else:
            buckets.setdefault((entry.role or "", entry.bill_rate.amount), []).append(entry)
    rule = project.rounding
    lines = []
    for (role, rate_amount), entries in sorted(buckets.items()):
        rate = Money(amount=rate_amount, currency=project.currency)
        quantity = rounded_quotient(Decimal(sum(e.minutes for e in entries)), 60, rule.quantity_places)
        lines.append(
            WipLine(
                role=role,
                rate=rate,
                quantity=quantity,
                amount=rule.line_amount(quantity, rate),
                entry_ids=tuple(e.id for e in entries),
            )
        )
    findings = []
    if no_rate:
        findings.append(_unvalued(project, "no_bill_rate", no_rate, "with no bill rate"))
    if wrong_currency:
        why = f"with a bill rate in another currency than the project's {project.currency}"
        findings.append(_unvalued(project, "currency_mismatch", wrong_currency, why))
    total = sum((line.amount.amount for line in lines), Decimal(0))
    return Wip(
        lines=tuple(lines), total=Money(amount=total, currency=project.currency), findings=tuple(findings)
    )


def _journal(project: MonthEndProject, kind: JournalKind, lines: list[JournalLine]) -> Journal:
    last_day = project.closing.last_day
    return Journal(
        legal_entity=project.legal_entity,
        project_id=project.project_id,
        period=project.period,
        kind=kind,
        date=last_day if kind == JournalKind.WIP_ACCRUAL else last_day + timedelta(days=1),
        currency=project.currency,
        lines=moving(lines),
    )


def wip_journals(project: MonthEndProject, wip: Wip) -> tuple[Journal, Journal]:
    """The accrual, dated the period's last day, and its reversal, dated the next period's first day."""
    revenue = [
        JournalLine(
            role=AccountRole.REVENUE,
            project_id=project.project_id,
            amount=-line.amount,
            description=f"Unbilled time {project.period}: {line.quantity} h {line.role or 'unassigned role'} "
            f"at {line.rate}",
            sources=SourceRefs.of(source_id("time", entry_id) for entry_id in line.entry_ids),
        )
        for line in wip.lines
    ]
    accrual = [
        *revenue,
        JournalLine(
            role=AccountRole.WIP,
            project_id=project.project_id,
            amount=wip.total,
            description=f"Unbilled WIP at the end of {project.period}",
            sources=SourceRefs.of(
                source_id("time", entry_id) for line in wip.lines for entry_id in line.entry_ids
            ),
        ),
    ]
    reversal = [
        line.model_copy(update={"amount": -line.amount, "description": f"Reversal: {line.description}"})
        for line in accrual
    ]
    return _journal(project, JournalKind.WIP_ACCRUAL, accrual), _journal(
        project, JournalKind.WIP_REVERSAL, reversal
    )
