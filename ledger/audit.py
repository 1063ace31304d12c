"""The audit trail: who did what to which business record, append-only."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import checks
from ledger.column_types import utc_now
from ledger.records import AuditEntry
from ledger.tables import AuditEvent


def append_audit(
    session: Session,
    *,
    workflow_id: str | None,
    run_id: str | None,
    actor: str,
    action: str,
    entity: str,
    key: str,
    detail: Any,
) -> AuditEntry:
    """Append one event. `detail` is a mapping or pydantic model; Decimals are kept exactly, as strings."""
    row = AuditEvent(
        occurred_at=utc_now(),
        workflow_id=checks.optional_key("workflow_id", workflow_id),
        run_id=checks.optional_key("run_id", run_id, max_length=64),
        actor=checks.key("actor", actor),
        action=checks.key("action", action, max_length=64),
        entity=checks.identifier("entity", entity, max_length=32),
        key=checks.key("key", key),
        detail=checks.json_object("detail", detail),
    )
    session.add(row)
    session.flush()
    return _entry(row)


def audit_trail(
    session: Session,
    *,
    key: str | None = None,
    workflow_id: str | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    """The newest `limit` events matching every filter given, newest first."""
    query = select(AuditEvent)
    if key is not None:
        query = query.where(AuditEvent.key == checks.key("key", key))
    if workflow_id is not None:
        query = query.where(AuditEvent.workflow_id == checks.key("workflow_id", workflow_id))
    query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(checks.limit(limit))
    return [_entry(row) for row in session.scalars(query)]


def _entry(row: AuditEvent) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        occurred_at=row.occurred_at,
        workflow_id=row.workflow_id,
        run_id=row.run_id,
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        key=row.key,
        detail=row.detail,
    )
