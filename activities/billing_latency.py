"""Billing latency, approval to posted: measured when a billing run audits its invoice as posted, against
the approval it audited before. Runs that needed no approval have no such latency."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog

from ledger.database import Database
from ledger.repository import audit_trail
from observability import metrics

log = structlog.get_logger("pssync.billing_latency")

POSTED, APPROVED = "invoice_posted", "invoice_approved"


def note_billing_latency(database: Database, *, action: str, key: str, detail: Mapping[str, Any]) -> None:
    if action != POSTED:
        return
    try:
        with database.session(read_only=True) as session:
            trail = audit_trail(session, key=key, limit=200)
        posted = next((entry for entry in trail if entry.action == POSTED), None)
        approved = next(
            (
                entry
                for entry in trail
                if entry.action == APPROVED and posted is not None and entry.occurred_at <= posted.occurred_at
            ),
            None,
        )
        if posted is None or approved is None:
            return
        metrics.billing_latency(
            str(detail.get("erp") or "unknown"), posted.occurred_at - approved.occurred_at
        )
    except Exception as error:  # a measurement never fails the audit it follows
        log.warning("billing_latency_unmeasured", key=key, error=f"{type(error).__name__}: {error}"[:500])
