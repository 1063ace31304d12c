"""Aggregates over the ledger for the health facts and the ingress's metrics: postings, posting refusals and
billing latency (finance's approval to the invoice posted, from the billing runs' audit)."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ledger.tables import AuditEvent, ExceptionEntry, Posting

APPROVED, POSTED = "invoice_approved", "invoice_posted"
# The exception a billing run raises when the ERP refused (or booked differently) its invoice.
POSTING_REFUSED_KEY_SUFFIX = ":posting-rejected"
BILLING_PROCESS = "time_to_billing"


def posting_counts(session: Session) -> dict[tuple[str, str], int]:
    """Postings by (erp, state)."""
    rows = session.execute(
        select(Posting.erp, Posting.state, func.count()).group_by(Posting.erp, Posting.state)
    )
    return {(erp, state): count for erp, state, count in rows}


def postings_since(session: Session, *, since: datetime) -> int:
    return session.scalar(select(func.count()).select_from(Posting).where(Posting.created_at >= since)) or 0


def posting_refusals_since(session: Session, *, since: datetime) -> int:
    """Times an ERP refused a billing run's invoice (each refusal a person had to look at), by the items
    last touched since then: every re-opening of one item counts again."""
    total = session.scalar(
        select(func.coalesce(func.sum(ExceptionEntry.attempts), 0)).where(
            ExceptionEntry.process == BILLING_PROCESS,
            ExceptionEntry.dedupe_key.like(f"%{POSTING_REFUSED_KEY_SUFFIX}"),
            ExceptionEntry.updated_at >= since,
        )
    )
    return int(total or 0)


def approval_to_posting(session: Session, *, since: datetime) -> list[timedelta]:
    """For each invoice posted since then after finance approved it: the time from the approval to the
    posting. Invoices that needed no approval have no such time."""
    posted = session.execute(
        select(AuditEvent.key, AuditEvent.occurred_at).where(
            AuditEvent.action == POSTED, AuditEvent.occurred_at >= since
        )
    ).all()
    if not posted:
        return []
    approvals: dict[str, list[datetime]] = defaultdict(list)
    keys = sorted({key for key, _ in posted})
    for start in range(0, len(keys), 500):
        for key, occurred_at in session.execute(
            select(AuditEvent.key, AuditEvent.occurred_at).where(
                AuditEvent.action == APPROVED, AuditEvent.key.in_(keys[start : start + 500])
            )
        ):
            approvals[key].append(occurred_at)
    latencies = []
    for key, posted_at in posted:
        before = [moment for moment in approvals.get(key, []) if moment <= posted_at]
        if before:
            latencies.append(posted_at - max(before))
    return latencies
