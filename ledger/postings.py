"""Invoice postings keyed by their idempotency key: the proof that an invoice went to the ERP once."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical import Money, Period
from ledger import checks
from ledger.column_types import fixed_point, utc_now
from ledger.errors import InvalidLedgerInput, PostingConflict, PostingNotFound
from ledger.races import insert_unless_present
from ledger.records import PostingRecord
from ledger.tables import MONEY_PRECISION, MONEY_SCALE, Posting
from ledger.vocab import PostingState


def record_posting(
    session: Session,
    *,
    idempotency_key: str,
    erp: str,
    legal_entity: str,
    project_id: str,
    period: str | Period,
    target_id: str,
    number: str | None,
    amount: Money,
    content_hash: str,
) -> PostingRecord:
    """Record that the invoice with this idempotency key now exists in the ERP as `target_id`.

    Idempotent: recording the same posting again returns the first record (filling in an ERP number that
    was not known the first time). Raises PostingConflict if the key was recorded with a different content
    hash, or with any other different fact (above all a different ERP invoice id, which would mean the ERP
    holds two invoices for one key). Safe against a concurrent call for the same key.
    """
    requested: dict[str, Any] = {
        "idempotency_key": checks.key("idempotency_key", idempotency_key),
        # The shape only, not "is an ERP": the ledger knows no vendors, and its one writer passes the
        # `system` of the ERP connector that the legal entity's configuration chose and that has just booked
        # the invoice. A list of ERPs here would only repeat that configuration, and fall out of step with it.
        "erp": checks.system_name("erp", erp),
        "legal_entity": checks.key("legal_entity", legal_entity, max_length=16),
        "project_id": checks.key("project_id", project_id),
        "period": _period(period),
        "target_id": checks.key("target_id", target_id),
        "number": checks.optional_key("number", number, max_length=64),
        "amount": _amount(amount),
        "currency": amount.currency,
        "content_hash": checks.key("content_hash", content_hash, max_length=128),
    }
    key = requested["idempotency_key"]

    def find() -> Posting | None:
        return session.scalar(select(Posting).where(Posting.idempotency_key == key))

    def build() -> Posting:
        return Posting(**requested, state=PostingState.POSTED, created_at=utc_now())

    row, created = insert_unless_present(session, find=find, build=build)
    if not created:
        _check_same(row, requested)
        if row.number is None and requested["number"] is not None:
            row.number = requested["number"]
            session.flush()
    return _record(row)


def get_posting(session: Session, *, idempotency_key: str) -> PostingRecord | None:
    row = _by_key(session, idempotency_key)
    return None if row is None else _record(row)


def mark_posting_billed(session: Session, *, idempotency_key: str) -> PostingRecord:
    """Mark the posting billed (its PSA entries carry the invoice number). Idempotent: keeps the first date.

    Raises PostingNotFound for an unknown key.
    """
    row = _by_key(session, idempotency_key)
    if row is None:
        raise PostingNotFound(f"no posting recorded for idempotency key {idempotency_key!r}")
    if row.state != PostingState.BILLED:
        row.state = PostingState.BILLED
        row.billed_at = utc_now()
        session.flush()
    return _record(row)


def postings_for(
    session: Session,
    *,
    legal_entity: str | None = None,
    period: str | Period | None = None,
    project_id: str | None = None,
) -> list[PostingRecord]:
    """Postings matching every filter given, oldest first."""
    query = select(Posting)
    if legal_entity is not None:
        query = query.where(Posting.legal_entity == checks.key("legal_entity", legal_entity, max_length=16))
    if period is not None:
        query = query.where(Posting.period == _period(period))
    if project_id is not None:
        query = query.where(Posting.project_id == checks.key("project_id", project_id))
    rows = session.scalars(query.order_by(Posting.created_at, Posting.id))
    return [_record(row) for row in rows]


def _by_key(session: Session, idempotency_key: str) -> Posting | None:
    key = checks.key("idempotency_key", idempotency_key)
    return session.scalar(select(Posting).where(Posting.idempotency_key == key))


def _period(value: Any) -> str:
    if isinstance(value, Period):
        return value.value
    try:
        return Period(value=value).value
    except ValidationError as error:
        raise InvalidLedgerInput(f"period must be a month written 'YYYY-MM', got {value!r}") from error


def _amount(amount: Any) -> Any:
    if not isinstance(amount, Money):
        raise InvalidLedgerInput(f"amount must be Money, got {type(amount).__name__}: {amount!r}")
    try:
        return fixed_point(amount.amount, precision=MONEY_PRECISION, scale=MONEY_SCALE, field="amount")
    except ValueError as error:
        raise InvalidLedgerInput(str(error)) from error


def _check_same(row: Posting, requested: dict[str, Any]) -> None:
    differences: dict[str, tuple[str, str]] = {}
    for field, wanted in requested.items():
        recorded = getattr(row, field)
        if field == "number" and (recorded is None or wanted is None):
            continue  # an ERP may number an invoice only once it is posted
        if recorded != wanted:
            differences[field] = (str(recorded), str(wanted))
    if not differences:
        return
    key = requested["idempotency_key"]
    if "content_hash" in differences:
        recorded_hash, wanted_hash = differences["content_hash"]
        message = (
            f"idempotency key {key!r} was recorded with content hash {recorded_hash}, not {wanted_hash}: "
            f"the same key must never post different content"
        )
    else:
        detail = "; ".join(
            f"{field} recorded {old!r}, now {new!r}" for field, (old, new) in differences.items()
        )
        message = f"idempotency key {key!r} was recorded with different facts: {detail}"
    raise PostingConflict(message, idempotency_key=key, differences=differences)


def _record(row: Posting) -> PostingRecord:
    return PostingRecord(
        idempotency_key=row.idempotency_key,
        erp=row.erp,
        legal_entity=row.legal_entity,
        project_id=row.project_id,
        period=row.period,
        target_id=row.target_id,
        number=row.number,
        amount=Money(amount=row.amount, currency=row.currency),
        content_hash=row.content_hash,
        state=PostingState(row.state),
        created_at=row.created_at,
        billed_at=row.billed_at,
    )
