"""The id crosswalk: which record in each system stands for one of our business keys."""

from __future__ import annotations

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from ledger import checks
from ledger.column_types import utc_now
from ledger.errors import CrosswalkConflict, LinkNotFound
from ledger.races import insert_unless_present
from ledger.records import Link
from ledger.tables import IdMap
from ledger.vocab import LinkStatus

_ENTITY_LENGTH = 32


def link_ids(
    session: Session,
    *,
    entity: str,
    canonical_key: str,
    system: str,
    external_id: str,
    status: str = LinkStatus.ACTIVE,
    note: str | None = None,
) -> Link:
    """Record that `external_id` in `system` is our `canonical_key`; idempotent.

    Linking a pair that is already linked returns the existing link unchanged (use `set_link_status` to
    change its status). Raises CrosswalkConflict if the key is linked to another external id, or the
    external id to another key, in that system. Safe against a concurrent call for the same pair.
    """
    entity = checks.identifier("entity", entity, max_length=_ENTITY_LENGTH)
    canonical_key = checks.key("canonical_key", canonical_key)
    chosen_system = checks.system_name("system", system)
    external_id = checks.key("external_id", external_id)
    chosen_status = checks.choice("status", status, LinkStatus)
    note = checks.optional_text("note", note)

    def find() -> IdMap | None:
        rows = session.scalars(
            select(IdMap).where(
                IdMap.entity == entity,
                IdMap.system == chosen_system,
                or_(IdMap.canonical_key == canonical_key, IdMap.external_id == external_id),
            )
        ).all()
        for row in rows:
            if row.canonical_key != canonical_key or row.external_id != external_id:
                raise _conflict(row, canonical_key=canonical_key, external_id=external_id)
        return rows[0] if rows else None

    def build() -> IdMap:
        now = utc_now()
        return IdMap(
            entity=entity,
            canonical_key=canonical_key,
            system=chosen_system,
            external_id=external_id,
            status=chosen_status,
            note=note,
            created_at=now,
            updated_at=now,
        )

    row, _ = insert_unless_present(session, find=find, build=build)
    return _link(row)


def find_external_id(session: Session, *, entity: str, canonical_key: str, system: str) -> str | None:
    """The id `system` uses for our key, whatever the link's status; None if not linked."""
    row = _by_key(session, entity=entity, canonical_key=canonical_key, system=system)
    return None if row is None else row.external_id


def find_canonical_key(session: Session, *, entity: str, system: str, external_id: str) -> str | None:
    entity = checks.identifier("entity", entity, max_length=_ENTITY_LENGTH)
    chosen_system = checks.system_name("system", system)
    external_id = checks.key("external_id", external_id)
    return session.scalar(
        select(IdMap.canonical_key).where(
            IdMap.entity == entity, IdMap.system == chosen_system, IdMap.external_id == external_id
        )
    )


def get_link(session: Session, *, entity: str, canonical_key: str, system: str) -> Link | None:
    row = _by_key(session, entity=entity, canonical_key=canonical_key, system=system)
    return None if row is None else _link(row)


def links_for(session: Session, *, entity: str, canonical_key: str) -> list[Link]:
    """Every system's id for one business key, ordered by system."""
    entity = checks.identifier("entity", entity, max_length=_ENTITY_LENGTH)
    canonical_key = checks.key("canonical_key", canonical_key)
    rows = session.scalars(
        select(IdMap)
        .where(IdMap.entity == entity, IdMap.canonical_key == canonical_key)
        .order_by(IdMap.system)
    )
    return [_link(row) for row in rows]


def set_link_status(
    session: Session,
    *,
    entity: str,
    canonical_key: str,
    system: str,
    status: str,
    note: str | None,
) -> Link:
    """Set the link's status and replace its note (None clears it). LinkNotFound if there is no such link."""
    chosen_status = checks.choice("status", status, LinkStatus)
    note = checks.optional_text("note", note)
    row = _by_key(session, entity=entity, canonical_key=canonical_key, system=system)
    if row is None:
        raise LinkNotFound(f"no {system} link for {entity} {canonical_key!r}")
    if row.status != chosen_status or row.note != note:
        row.status = chosen_status
        row.note = note
        row.updated_at = utc_now()
        session.flush()
    return _link(row)


def _by_key(session: Session, *, entity: str, canonical_key: str, system: str) -> IdMap | None:
    entity = checks.identifier("entity", entity, max_length=_ENTITY_LENGTH)
    canonical_key = checks.key("canonical_key", canonical_key)
    chosen_system = checks.system_name("system", system)
    return session.scalar(
        select(IdMap).where(
            and_(IdMap.entity == entity, IdMap.canonical_key == canonical_key, IdMap.system == chosen_system)
        )
    )


def _conflict(row: IdMap, *, canonical_key: str, external_id: str) -> CrosswalkConflict:
    if row.canonical_key == canonical_key:
        message = (
            f"{row.entity} {canonical_key!r} is already linked to {row.system} id {row.external_id!r}; "
            f"refusing to link it to {external_id!r}"
        )
    else:
        message = (
            f"{row.system} {row.entity} id {external_id!r} is already linked to {row.canonical_key!r}; "
            f"refusing to link it to {canonical_key!r}"
        )
    return CrosswalkConflict(
        message,
        entity=row.entity,
        system=row.system,
        canonical_key=canonical_key,
        external_id=external_id,
        existing_canonical_key=row.canonical_key,
        existing_external_id=row.external_id,
    )


def _link(row: IdMap) -> Link:
    return Link(
        id=row.id,
        entity=row.entity,
        canonical_key=row.canonical_key,
        system=row.system,
        external_id=row.external_id,
        status=LinkStatus(row.status),
        note=row.note,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
