"""Month-end in the ledger, on SQLite and PostgreSQL: posted journals read back exactly and once per
reference, the position a close left is where the next period starts, and percentage-of-completion terms
are audited."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select

from canonical import Money
from domain.month_end import (
    AccountRole,
    Journal,
    JournalKind,
    JournalLine,
    MarginSummary,
    Position,
    SourceRefs,
)
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.month_end import (
    budget_hours_of,
    latest_positions,
    month_end_journals,
    position_before,
    record_month_end_journal,
    remove_percentage_of_completion,
    save_position,
    set_percentage_of_completion,
)
from ledger.tables import AuditEvent


def _journal(project: str, amount: str, kind: JournalKind = JournalKind.LABOUR_COST) -> Journal:
    money = Money.of(amount, "GBP")
    sources = SourceRefs.of(["time:1", "time:2"])
    return Journal(
        legal_entity="UK",
        project_id=project,
        period="2026-11",
        kind=kind,
        date=date(2026, 11, 30),
        currency="GBP",
        lines=(
            JournalLine(
                role=AccountRole.LABOUR_COST,
                project_id=project,
                amount=money,
                description="cost",
                sources=sources,
            ),
            JournalLine(
                role=AccountRole.COST_CLEARING,
                project_id=project,
                amount=-money,
                description="cost",
                sources=sources,
            ),
        ),
    )


def _margin(project: str, period: str) -> MarginSummary:
    zero = Money.zero("GBP")
    return MarginSummary(
        project_id=project,
        period=period,
        currency="GBP",
        revenue=Money.of("100.01", "GBP"),
        revenue_in_period=zero,
        labour_cost=zero,
        labour_cost_in_period=zero,
        billed=zero,
        wip=zero,
        margin=Money.of("100.01", "GBP"),
        margin_in_period=zero,
        margin_percent=Decimal("100.0"),
    )


def test_a_posted_journal_reads_back_exactly_and_once_per_reference(db: Database) -> None:
    journals = [_journal("101", "1234.57"), _journal("102", "0.01")]
    with db.session() as session:
        first = record_month_end_journal(
            session,
            reference="LABOUR-UK-2026-11",
            legal_entity="UK",
            period="2026-11",
            kind=JournalKind.LABOUR_COST,
            adjustment=0,
            erp="xero",
            journal_id="j-1",
            total_debits=Money.of("1234.58", "GBP"),
            journals=journals,
        )
        again = record_month_end_journal(
            session,
            reference="LABOUR-UK-2026-11",
            legal_entity="UK",
            period="2026-11",
            kind=JournalKind.LABOUR_COST,
            adjustment=0,
            erp="xero",
            journal_id="j-other",
            total_debits=Money.of("1", "GBP"),
            journals=journals[:1],
        )
    assert again == first
    with db.session(read_only=True) as session:
        stored = month_end_journals(
            session, legal_entity="UK", period="2026-11", kind=JournalKind.LABOUR_COST
        )
        other_kind = month_end_journals(
            session, legal_entity="UK", period="2026-11", kind=JournalKind.RECOGNITION
        )
    assert [record.journal_id for record in stored] == ["j-1"]
    assert stored[0].journals == tuple(journals)
    assert stored[0].total_debits == Money.of("1234.58", "GBP")
    assert other_kind == []


def test_a_journal_of_another_period_is_refused(db: Database) -> None:
    with db.session() as session, pytest.raises(InvalidLedgerInput, match="cannot carry"):
        record_month_end_journal(
            session,
            reference="LABOUR-UK-2026-12",
            legal_entity="UK",
            period="2026-12",
            kind=JournalKind.LABOUR_COST,
            adjustment=0,
            erp="xero",
            journal_id="j-1",
            total_debits=Money.of("1", "GBP"),
            journals=[_journal("101", "1")],
        )


def test_the_next_period_starts_from_the_latest_earlier_close(db: Database) -> None:
    october = Position(
        currency="GBP",
        recognised=Money.of("10.00", "GBP"),
        revenue_position=Money.of("-5.00", "GBP"),
        labour_cost=Money.of("3.00", "GBP"),
    )
    november = october.model_copy(update={"recognised": Money.of("20.00", "GBP")})
    with db.session() as session:
        save_position(
            session,
            legal_entity="UK",
            period="2026-10",
            project_id="101",
            position=october,
            margin=_margin("101", "2026-10"),
        )
        save_position(
            session,
            legal_entity="UK",
            period="2026-11",
            project_id="101",
            position=october,
            margin=_margin("101", "2026-11"),
        )
        # A re-run of November replaces its position.
        save_position(
            session,
            legal_entity="UK",
            period="2026-11",
            project_id="101",
            position=november,
            margin=_margin("101", "2026-11"),
        )
    with db.session(read_only=True) as session:
        for_november = position_before(session, legal_entity="UK", period="2026-11", project_id="101")
        for_december = position_before(session, legal_entity="UK", period="2026-12", project_id="101")
        for_october = position_before(session, legal_entity="UK", period="2026-10", project_id="101")
        other_entity = position_before(session, legal_entity="EU", period="2026-12", project_id="101")
    assert for_november is not None and for_november.position == october
    assert for_december is not None and for_december.position == november
    assert for_october is None and other_entity is None
    with db.session(read_only=True) as session:
        latest = latest_positions(session, limit=1)
    assert [(p.period, p.position) for p in latest] == [("2026-11", november)]


def test_percentage_of_completion_is_set_changed_and_removed_with_an_audit_trail(db: Database) -> None:
    with db.session() as session:
        set_percentage_of_completion(
            session, psa="kantata", project_id="101", budget_hours=Decimal("120"), actor="fiona@example.com"
        )
        set_percentage_of_completion(
            session, psa="kantata", project_id="101", budget_hours=Decimal("132.5"), actor="fiona@example.com"
        )
    with db.session(read_only=True) as session:
        assert budget_hours_of(session, psa="kantata", project_id="101") == Decimal("132.5")
    with db.session() as session:
        assert remove_percentage_of_completion(
            session, psa="kantata", project_id="101", actor="fiona@example.com"
        )
        assert (
            remove_percentage_of_completion(session, psa="kantata", project_id="101", actor="x@example.com")
            is None
        )
        actions = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.entity == "project_recognition")
            .order_by(AuditEvent.id)
        ).all()
        assert budget_hours_of(session, psa="kantata", project_id="101") is None
    assert actions == ["recognition_set", "recognition_set", "recognition_removed"]


@pytest.mark.parametrize("hours", [Decimal("0"), Decimal("-1"), Decimal("NaN")])
def test_budget_hours_must_be_positive(db: Database, hours: Decimal) -> None:
    with db.session() as session, pytest.raises(InvalidLedgerInput):
        set_percentage_of_completion(
            session, psa="kantata", project_id="101", budget_hours=hours, actor="f@x.com"
        )
