"""Month-end in the ledger: how finance recognises a fixed fee, what each close posted, and where it left
each project.

- `project_recognition`: a fixed-fee project finance has set budget hours for is recognised by percentage of
  completion (`pssync recognition set`); governed like the account mapping, audited against the person.
- `month_end_journal`: every journal a close posted (the first of its entity, period and kind, then each
  adjustment), with the proposed journal of each project it carried, so a re-run posts only the difference.
- `month_end_position`: where the close of a period left each project; the next period starts from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical import Money, Period
from domain.month_end import Journal, JournalKind, MarginSummary, Position
from ledger import checks
from ledger.audit import append_audit
from ledger.column_types import fixed_point, utc_now
from ledger.errors import InvalidLedgerInput, StoredRecordInvalid
from ledger.races import insert_unless_present
from ledger.tables import (
    MONEY_PRECISION,
    MONEY_SCALE,
    MonthEndJournalRow,
    MonthEndPosition,
    ProjectContractRow,
    ProjectRecognition,
)

RECOGNITION_AUDIT_ENTITY = "project_recognition"
_ENTITY_LENGTH = 16


class RecognitionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    psa: str
    project_id: str
    budget_hours: Decimal
    updated_by: str
    updated_at: datetime


class MonthEndJournalRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    reference: str
    legal_entity: str
    period: str
    kind: JournalKind
    adjustment: int
    erp: str
    journal_id: str
    total_debits: Money
    # The proposal of each project the posted journal carried, by account role.
    journals: tuple[Journal, ...]
    posted_at: datetime


class MonthEndPositionRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    legal_entity: str
    period: str
    project_id: str
    position: Position
    margin: MarginSummary
    closed_at: datetime


def _period(value: str) -> str:
    try:
        return Period(value=value).value
    except ValidationError as error:
        raise InvalidLedgerInput(f"period must be a month written 'YYYY-MM', got {value!r}") from error


def _entity(value: str) -> str:
    return checks.key("legal_entity", value, max_length=_ENTITY_LENGTH)


# --- recognition terms ---


def _recognition_row(session: Session, psa: str, project_id: str) -> ProjectRecognition | None:
    return session.scalar(
        select(ProjectRecognition).where(
            ProjectRecognition.psa == psa, ProjectRecognition.project_id == project_id
        )
    )


def _recognition(row: ProjectRecognition) -> RecognitionRecord:
    return RecognitionRecord(
        psa=row.psa,
        project_id=row.project_id,
        budget_hours=row.budget_hours,
        updated_by=row.updated_by,
        updated_at=row.updated_at,
    )


def set_percentage_of_completion(
    session: Session, *, psa: str, project_id: str, budget_hours: Decimal, actor: str
) -> RecognitionRecord:
    """Recognise the fixed-fee project by hours worked against `budget_hours`; audited against `actor`."""
    psa = checks.system_name("psa", psa)
    project_id = checks.key("project_id", project_id)
    actor = checks.key("actor", actor)
    if not isinstance(budget_hours, Decimal) or not budget_hours.is_finite() or budget_hours <= 0:
        raise InvalidLedgerInput(f"budget hours must be a positive Decimal, got {budget_hours!r}")
    try:
        hours = fixed_point(budget_hours, precision=MONEY_PRECISION, scale=MONEY_SCALE, field="budget_hours")
    except ValueError as error:
        raise InvalidLedgerInput(str(error)) from error
    before = _recognition_row(session, psa, project_id)
    previous = None if before is None else str(before.budget_hours)
    now = utc_now()

    def build() -> ProjectRecognition:
        return ProjectRecognition(
            psa=psa,
            project_id=project_id,
            budget_hours=hours,
            updated_by=actor,
            created_at=now,
            updated_at=now,
        )

    row, created = insert_unless_present(
        session, find=lambda: _recognition_row(session, psa, project_id), build=build
    )
    if not created:
        row.budget_hours = hours
        row.updated_by = actor
        row.updated_at = now
    session.flush()
    append_audit(
        session,
        workflow_id=None,
        run_id=None,
        actor=actor,
        action="recognition_set",
        entity=RECOGNITION_AUDIT_ENTITY,
        key=f"{psa}:{project_id}",
        detail={
            "method": "percentage_of_completion",
            "budget_hours": str(hours),
            "previous_budget_hours": previous,
        },
    )
    return _recognition(row)


def remove_percentage_of_completion(
    session: Session, *, psa: str, project_id: str, actor: str
) -> RecognitionRecord | None:
    """Back to milestone acceptance (None when the project had no budget hours); audited."""
    psa = checks.system_name("psa", psa)
    project_id = checks.key("project_id", project_id)
    actor = checks.key("actor", actor)
    row = _recognition_row(session, psa, project_id)
    if row is None:
        return None
    removed = _recognition(row)
    session.delete(row)
    session.flush()
    append_audit(
        session,
        workflow_id=None,
        run_id=None,
        actor=actor,
        action="recognition_removed",
        entity=RECOGNITION_AUDIT_ENTITY,
        key=f"{psa}:{project_id}",
        detail={"method": "milestone_acceptance", "previous_budget_hours": str(removed.budget_hours)},
    )
    return removed


def budget_hours_of(session: Session, *, psa: str, project_id: str) -> Decimal | None:
    row = _recognition_row(session, checks.system_name("psa", psa), checks.key("project_id", project_id))
    return None if row is None else row.budget_hours


def contract_captured_on(session: Session, *, psa: str, project_id: str) -> date | None:
    """The day the project's contract was first captured: where a retainer's term starts."""
    captured = session.scalar(
        select(ProjectContractRow.created_at).where(
            ProjectContractRow.psa == checks.system_name("psa", psa),
            ProjectContractRow.project_id == checks.key("project_id", project_id),
        )
    )
    return None if captured is None else captured.date()


# --- journals posted ---


def _journal_record(row: MonthEndJournalRow) -> MonthEndJournalRecord:
    try:
        journals = tuple(Journal.model_validate(raw) for raw in row.journals)
    except ValidationError as error:
        raise StoredRecordInvalid(
            f"stored month-end journal {row.reference} no longer validates: {error}"
        ) from error
    return MonthEndJournalRecord(
        reference=row.reference,
        legal_entity=row.legal_entity,
        period=row.period,
        kind=JournalKind(row.kind),
        adjustment=row.adjustment,
        erp=row.erp,
        journal_id=row.journal_id,
        total_debits=Money(amount=row.total_debits, currency=row.currency),
        journals=journals,
        posted_at=row.posted_at,
    )


def record_month_end_journal(
    session: Session,
    *,
    reference: str,
    legal_entity: str,
    period: str,
    kind: JournalKind,
    adjustment: int,
    erp: str,
    journal_id: str,
    total_debits: Money,
    journals: Sequence[Journal],
) -> MonthEndJournalRecord:
    """Record that the journal `reference` is posted as `journal_id`. Idempotent by reference: the same
    reference again returns the first record (a retried post found the same journal)."""
    reference = checks.key("reference", reference, max_length=64)
    if adjustment < 0:
        raise InvalidLedgerInput(f"adjustment must be 0 or more, got {adjustment}")
    entity = _entity(legal_entity)
    period = _period(period)
    for journal in journals:
        if (journal.legal_entity, journal.period, journal.kind) != (entity, period, kind):
            raise InvalidLedgerInput(
                f"journal {reference} ({entity} {period} {kind}) cannot carry project {journal.project_id}'s "
                f"{journal.kind} of {journal.legal_entity} {journal.period}"
            )
    try:
        amount = fixed_point(total_debits.amount, precision=MONEY_PRECISION, scale=MONEY_SCALE, field="total")
    except ValueError as error:
        raise InvalidLedgerInput(str(error)) from error
    values = {
        "reference": reference,
        "legal_entity": entity,
        "period": period,
        "kind": JournalKind(kind).value,
        "adjustment": adjustment,
        "erp": checks.system_name("erp", erp),
        "journal_id": checks.key("journal_id", journal_id),
        "currency": total_debits.currency,
        "total_debits": amount,
        "journals": [journal.model_dump(mode="json") for journal in journals],
    }

    def find() -> MonthEndJournalRow | None:
        return session.scalar(select(MonthEndJournalRow).where(MonthEndJournalRow.reference == reference))

    row, _ = insert_unless_present(
        session, find=find, build=lambda: MonthEndJournalRow(**values, posted_at=utc_now())
    )
    return _journal_record(row)


def month_end_journals(
    session: Session, *, legal_entity: str, period: str, kind: JournalKind | None = None
) -> list[MonthEndJournalRecord]:
    """The journals closes of the entity's period posted (of one kind, when given), first run first."""
    query = select(MonthEndJournalRow).where(
        MonthEndJournalRow.legal_entity == _entity(legal_entity), MonthEndJournalRow.period == _period(period)
    )
    if kind is not None:
        query = query.where(MonthEndJournalRow.kind == JournalKind(kind).value)
    rows = session.scalars(query.order_by(MonthEndJournalRow.kind, MonthEndJournalRow.adjustment))
    return [_journal_record(row) for row in rows]


def latest_month_end_journals(session: Session, *, limit: int = 20) -> list[MonthEndJournalRecord]:
    """The most recently posted month-end journals, newest first (the ops page)."""
    rows = session.scalars(
        select(MonthEndJournalRow)
        .order_by(MonthEndJournalRow.posted_at.desc(), MonthEndJournalRow.id.desc())
        .limit(limit)
    )
    return [_journal_record(row) for row in rows]


# --- positions ---


def _position_row(session: Session, entity: str, period: str, project_id: str) -> MonthEndPosition | None:
    return session.scalar(
        select(MonthEndPosition).where(
            MonthEndPosition.legal_entity == entity,
            MonthEndPosition.period == period,
            MonthEndPosition.project_id == project_id,
        )
    )


def _position_record(row: MonthEndPosition) -> MonthEndPositionRecord:
    try:
        position = Position.model_validate(row.position)
        margin = MarginSummary.model_validate(row.margin)
    except ValidationError as error:
        raise StoredRecordInvalid(
            f"stored month-end position of {row.legal_entity} {row.period} {row.project_id} no longer "
            f"validates: {error}"
        ) from error
    return MonthEndPositionRecord(
        legal_entity=row.legal_entity,
        period=row.period,
        project_id=row.project_id,
        position=position,
        margin=margin,
        closed_at=row.closed_at,
    )


def save_position(
    session: Session,
    *,
    legal_entity: str,
    period: str,
    project_id: str,
    position: Position,
    margin: MarginSummary,
) -> MonthEndPositionRecord:
    """Where the close of `period` left the project; a re-run of the period replaces it."""
    entity = _entity(legal_entity)
    period = _period(period)
    project_id = checks.key("project_id", project_id)
    now = utc_now()
    values = {"position": position.model_dump(mode="json"), "margin": margin.model_dump(mode="json")}

    def build() -> MonthEndPosition:
        return MonthEndPosition(
            legal_entity=entity, period=period, project_id=project_id, **values, closed_at=now
        )

    row, created = insert_unless_present(
        session, find=lambda: _position_row(session, entity, period, project_id), build=build
    )
    if not created:
        row.position = values["position"]
        row.margin = values["margin"]
        row.closed_at = now
    session.flush()
    return _position_record(row)


def position_before(
    session: Session, *, legal_entity: str, period: str, project_id: str
) -> MonthEndPositionRecord | None:
    """Where the latest close of an earlier period left the project: what closing `period` starts from."""
    row = session.scalar(
        select(MonthEndPosition)
        .where(
            MonthEndPosition.legal_entity == _entity(legal_entity),
            MonthEndPosition.project_id == checks.key("project_id", project_id),
            MonthEndPosition.period < _period(period),
        )
        .order_by(MonthEndPosition.period.desc())
        .limit(1)
    )
    return None if row is None else _position_record(row)


def positions_of(session: Session, *, legal_entity: str, period: str) -> list[MonthEndPositionRecord]:
    rows = session.scalars(
        select(MonthEndPosition)
        .where(
            MonthEndPosition.legal_entity == _entity(legal_entity), MonthEndPosition.period == _period(period)
        )
        .order_by(MonthEndPosition.project_id)
    )
    return [_position_record(row) for row in rows]


def latest_positions(session: Session, *, limit: int = 20) -> list[MonthEndPositionRecord]:
    """The projects' positions most recently closed, newest first (the ops page's margins)."""
    rows = session.scalars(
        select(MonthEndPosition)
        .order_by(MonthEndPosition.closed_at.desc(), MonthEndPosition.id.desc())
        .limit(limit)
    )
    return [_position_record(row) for row in rows]
