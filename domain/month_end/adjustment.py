"""Re-running a period: the new proposal less what earlier runs of the same entity, period, kind and project
already posted, by account role and project. Nothing changed: an empty journal, so nothing is posted."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from canonical import Money
from domain.month_end.journal import AccountRole, Journal, JournalLine
from domain.month_end.sources import SourceRefs

_Key = tuple[AccountRole, str]


def _same_journal(proposed: Journal, posted: Journal) -> bool:
    fields = ("legal_entity", "project_id", "period", "kind", "currency")
    return all(getattr(proposed, name) == getattr(posted, name) for name in fields)


def _by_key(lines: Sequence[JournalLine]) -> dict[_Key, list[JournalLine]]:
    grouped: dict[_Key, list[JournalLine]] = {}
    for line in lines:
        grouped.setdefault((line.role, line.project_id), []).append(line)
    return grouped


def _sources(lines: list[JournalLine]) -> SourceRefs:
    sources = SourceRefs(count=0)
    for line in lines:
        sources = sources.combined(line.sources)
    return sources


def adjustment(proposed: Journal, posted: Sequence[Journal]) -> Journal:
    """`proposed` less every journal already posted for it (its first run and any adjustments since)."""
    for journal in posted:
        if not _same_journal(proposed, journal):
            raise ValueError(
                f"cannot adjust {proposed.kind} {proposed.project_id} {proposed.period} by a posted "
                f"{journal.kind} {journal.project_id} {journal.period} in {journal.currency}"
            )
    new = _by_key(proposed.lines)
    old = _by_key([line for journal in posted for line in journal.lines])
    lines = []
    for key in sorted(new.keys() | old.keys()):
        now = sum((line.amount.amount for line in new.get(key, [])), Decimal(0))
        before = sum((line.amount.amount for line in old.get(key, [])), Decimal(0))
        if now == before:
            continue
        if key in new:
            description = f"Adjustment: {new[key][0].description}"
            sources = _sources(new[key])
        else:
            description = f"Adjustment: reverses {key[0]} posted earlier for {proposed.period}"
            sources = _sources(old[key])
        lines.append(
            JournalLine(
                role=key[0],
                project_id=key[1],
                amount=Money(amount=now - before, currency=proposed.currency),
                description=description,
                sources=sources,
            )
        )
    # Built anew rather than copied, so the difference is checked to balance like any journal.
    return Journal(
        legal_entity=proposed.legal_entity,
        project_id=proposed.project_id,
        period=proposed.period,
        kind=proposed.kind,
        date=proposed.date,
        currency=proposed.currency,
        lines=tuple(lines),
        adjustment=True,
    )
