"""Supplier bills posted to an ERP, keyed by their idempotency key: what reconciliation holds the ERP's bills
against (the audit trail says a bill was posted; this says what it was)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from canonical import Money, Period
from canonical.payables import Bill, PostedBill
from domain.reconcile_payables import bill_period, supplier_in_key
from ledger import checks
from ledger.column_types import fixed_point, utc_now
from ledger.crosswalk import find_canonical_key
from ledger.errors import InvalidLedgerInput
from ledger.races import insert_unless_present
from ledger.records import SystemName
from ledger.tables import MONEY_PRECISION, MONEY_SCALE, BillPosting


class BillPostingRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    idempotency_key: str
    erp: SystemName
    legal_entity: str
    period: str
    supplier_key: str
    reference: str
    bill_id: str
    number: str
    total: Money
    line_count: int
    # Per bill line, in the bill's order, the PSA items it pays for.
    source_ids: tuple[tuple[str, ...], ...]
    posted_at: datetime


def record_bill_posting(
    session: Session,
    *,
    idempotency_key: str,
    erp: str,
    legal_entity: str,
    period: str | Period,
    supplier_key: str,
    reference: str,
    bill_id: str,
    number: str,
    total: Money,
    source_ids: Sequence[Sequence[str]],
    posted_at: datetime | None = None,
) -> BillPostingRecord:
    """Record that the bill posted under this idempotency key exists in the ERP as `bill_id`.

    Idempotent: the same key again returns the first record and changes nothing, whatever else is given (a
    retried post finds the same bill; were it another one, reconciliation finds the ERP's second bill
    without a record here). `source_ids` holds, per bill line, the PSA items it pays for. Safe against a
    concurrent call for the same key.
    """
    key = checks.key("idempotency_key", idempotency_key)
    lines = tuple(tuple(checks.key("source_ids", item) for item in line) for line in source_ids)
    if not isinstance(total, Money):
        raise InvalidLedgerInput(f"total must be Money, got {type(total).__name__}: {total!r}")
    try:
        amount = fixed_point(total.amount, precision=MONEY_PRECISION, scale=MONEY_SCALE, field="total")
    except ValueError as error:
        raise InvalidLedgerInput(str(error)) from error
    values = {
        "idempotency_key": key,
        "erp": checks.system_name("erp", erp),
        "legal_entity": checks.key("legal_entity", legal_entity, max_length=16),
        "period": _period(period),
        "supplier_key": checks.key("supplier_key", supplier_key),
        "reference": checks.key("reference", reference),
        "bill_id": checks.key("bill_id", bill_id),
        "number": checks.key("number", number),
        "total": amount,
        "currency": total.currency,
        "line_count": len(lines),
        "source_ids": [list(line) for line in lines],
    }

    def find() -> BillPosting | None:
        return session.scalar(select(BillPosting).where(BillPosting.idempotency_key == key))

    def build() -> BillPosting:
        return BillPosting(**values, posted_at=posted_at or utc_now())

    row, _ = insert_unless_present(session, find=find, build=build)
    return _record(row)


def record_posted_bill(
    session: Session, *, idempotency_key: str, bill: Bill, posted: PostedBill
) -> BillPostingRecord:
    """`record_bill_posting` for a bill as the Payables run posted it. Its supplier key is the one the
    crosswalk links to the ERP's supplier (else the one inside the bill's key, else the ERP's own supplier
    id, `{erp}:{id}`) and its period the one in its reference, so the run's commands need not carry them."""
    supplier_key = (
        find_canonical_key(session, entity="supplier", system=posted.erp, external_id=bill.supplier_id)
        or supplier_in_key(idempotency_key)
        or f"{posted.erp}:{bill.supplier_id}"
    )
    return record_bill_posting(
        session,
        idempotency_key=idempotency_key,
        erp=posted.erp,
        legal_entity=bill.legal_entity,
        period=bill_period(reference=bill.reference, idempotency_key=idempotency_key, issued=bill.issue_date),
        supplier_key=supplier_key,
        reference=bill.reference,
        bill_id=posted.bill_id,
        number=posted.number,
        total=posted.total,
        source_ids=[line.source_ids for line in bill.lines],
    )


def get_bill_posting(session: Session, *, idempotency_key: str) -> BillPostingRecord | None:
    key = checks.key("idempotency_key", idempotency_key)
    row = session.scalar(select(BillPosting).where(BillPosting.idempotency_key == key))
    return None if row is None else _record(row)


def bill_postings_for(
    session: Session, *, legal_entity: str, period: str | Period
) -> list[BillPostingRecord]:
    """The entity's bills of the period, oldest first."""
    rows = session.scalars(
        select(BillPosting)
        .where(
            BillPosting.legal_entity == checks.key("legal_entity", legal_entity, max_length=16),
            BillPosting.period == _period(period),
        )
        .order_by(BillPosting.posted_at, BillPosting.id)
    )
    return [_record(row) for row in rows]


def _period(value: str | Period) -> str:
    if isinstance(value, Period):
        return value.value
    try:
        return Period(value=value).value
    except ValueError as error:
        raise InvalidLedgerInput(f"period must be a month written 'YYYY-MM', got {value!r}") from error


def _record(row: BillPosting) -> BillPostingRecord:
    return BillPostingRecord(
        idempotency_key=row.idempotency_key,
        erp=row.erp,
        legal_entity=row.legal_entity,
        period=row.period,
        supplier_key=row.supplier_key,
        reference=row.reference,
        bill_id=row.bill_id,
        number=row.number,
        total=Money(amount=row.total, currency=row.currency),
        line_count=row.line_count,
        source_ids=tuple(tuple(line) for line in row.source_ids),
        posted_at=row.posted_at,
    )
