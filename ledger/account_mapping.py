"""Finance's account mapping, per legal entity: which account each kind of invoice line books to.

Governed reference data: every change records the person who made it on the row and in the audit trail, in
the same transaction. What the rules mean is `domain.account_mapping`; this module only keeps them.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.account_mapping import KINDS, AccountRule, MappingKind
from ledger import checks
from ledger.audit import append_audit
from ledger.column_types import utc_now
from ledger.errors import InvalidLedgerInput
from ledger.races import insert_unless_present
from ledger.tables import AccountMappingRow

AUDIT_ENTITY = "account_mapping"
_ENTITY_LENGTH = 16


class AccountMappingRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    legal_entity: str
    rule: AccountRule
    updated_by: str
    created_at: datetime
    updated_at: datetime


def _kind(kind: str) -> MappingKind:
    if kind not in KINDS:
        raise InvalidLedgerInput(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind  # type: ignore[return-value]


def _record(row: AccountMappingRow) -> AccountMappingRecord:
    return AccountMappingRecord(
        legal_entity=row.legal_entity,
        rule=AccountRule(
            kind=_kind(row.kind),
            key=row.key,
            account_code=row.account_code,
            cost_account_code=row.cost_account_code,
        ),
        updated_by=row.updated_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _row(session: Session, legal_entity: str, kind: str, key: str) -> AccountMappingRow | None:
    return session.scalar(
        select(AccountMappingRow).where(
            AccountMappingRow.legal_entity == legal_entity,
            AccountMappingRow.kind == kind,
            AccountMappingRow.key == key,
        )
    )


def set_account_mapping(
    session: Session, *, legal_entity: str, rule: AccountRule, actor: str
) -> AccountMappingRecord:
    """Create or replace the entity's rule for `rule.kind` and `rule.key`; audited against `actor`."""
    entity = checks.key("legal_entity", legal_entity, max_length=_ENTITY_LENGTH)
    actor = checks.key("actor", actor)
    key = checks.key("key", rule.key, max_length=128)
    before = _row(session, entity, rule.kind, key)
    previous = None if before is None else _record(before).rule
    now = utc_now()

    def build() -> AccountMappingRow:
        return AccountMappingRow(
            legal_entity=entity,
            kind=rule.kind,
            key=key,
            account_code=rule.account_code,
            cost_account_code=rule.cost_account_code,
            updated_by=actor,
            created_at=now,
            updated_at=now,
        )

    row, created = insert_unless_present(
        session, find=lambda: _row(session, entity, rule.kind, key), build=build
    )
    if not created:
        row.account_code = rule.account_code
        row.cost_account_code = rule.cost_account_code
        row.updated_by = actor
        row.updated_at = now
    session.flush()
    append_audit(
        session,
        workflow_id=None,
        run_id=None,
        actor=actor,
        action="account_mapping_set",
        entity=AUDIT_ENTITY,
        key=f"{entity}:{rule.kind}:{key}",
        detail={
            "legal_entity": entity,
            "rule": rule.model_dump(mode="json"),
            "previous": None if previous is None else previous.model_dump(mode="json"),
        },
    )
    return _record(row)


def remove_account_mapping(
    session: Session, *, legal_entity: str, kind: str, key: str, actor: str
) -> AccountMappingRecord | None:
    """Remove the rule (None when there was none); audited against `actor`."""
    entity = checks.key("legal_entity", legal_entity, max_length=_ENTITY_LENGTH)
    actor = checks.key("actor", actor)
    row = _row(session, entity, _kind(kind), checks.key("key", key, max_length=128))
    if row is None:
        return None
    removed = _record(row)
    session.delete(row)
    session.flush()
    append_audit(
        session,
        workflow_id=None,
        run_id=None,
        actor=actor,
        action="account_mapping_removed",
        entity=AUDIT_ENTITY,
        key=f"{entity}:{kind}:{key}",
        detail={"legal_entity": entity, "previous": removed.rule.model_dump(mode="json")},
    )
    return removed


def list_account_mappings(session: Session, *, legal_entity: str | None = None) -> list[AccountMappingRecord]:
    """Every rule (of one entity, when given), by entity, kind and key."""
    query = select(AccountMappingRow)
    if legal_entity is not None:
        entity = checks.key("legal_entity", legal_entity, max_length=_ENTITY_LENGTH)
        query = query.where(AccountMappingRow.legal_entity == entity)
    rows = session.scalars(
        query.order_by(AccountMappingRow.legal_entity, AccountMappingRow.kind, AccountMappingRow.key)
    )
    return [_record(row) for row in rows]


def account_rules(session: Session, *, legal_entity: str) -> tuple[AccountRule, ...]:
    return tuple(record.rule for record in list_account_mappings(session, legal_entity=legal_entity))
