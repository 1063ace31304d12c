"""The exception queue: what needs a person, who owns it, and what they did about it.

Lifecycle: a failure opens an item (or re-opens the one with the same dedupe key); a person then
retries it, fixes fields and retries, skips it (with a note saying why), or marks it resolved.

    open --retry/fix--> retrying --(fails again)--> open
    open|retrying --skip--> skipped,  --resolve--> resolved
    skipped|resolved --(fails again)--> open, attempts + 1
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from canonical import ExceptionOwner
from ledger import checks
from ledger.column_types import utc_now
from ledger.errors import ExceptionNotFound, InvalidExceptionTransition, InvalidLedgerInput
from ledger.races import insert_unless_present
from ledger.records import ExceptionItem, OwnerExceptionSummary, Resolution
from ledger.tables import ExceptionEntry
from ledger.vocab import CLOSED_EXCEPTION_STATUSES, ExceptionAction, ExceptionStatus

_WAITING = frozenset({ExceptionStatus.OPEN, ExceptionStatus.RETRYING})

# action -> (statuses it may be taken from, status it leads to)
_TRANSITIONS: dict[ExceptionAction, tuple[frozenset[ExceptionStatus], ExceptionStatus]] = {
    ExceptionAction.RETRY: (frozenset({ExceptionStatus.OPEN}), ExceptionStatus.RETRYING),
    ExceptionAction.FIX: (frozenset({ExceptionStatus.OPEN}), ExceptionStatus.RETRYING),
    ExceptionAction.SKIP: (_WAITING, ExceptionStatus.SKIPPED),
    ExceptionAction.RESOLVE: (_WAITING, ExceptionStatus.RESOLVED),
}


def open_exception(
    session: Session,
    *,
    dedupe_key: str,
    process: str,
    owner: str,
    reason: str,
    record: Any,
    workflow_id: str | None = None,
    run_id: str | None = None,
) -> ExceptionItem:
    """Raise an exception for a person, once per dedupe key.

    A new key opens an item with attempts = 1. An item that is still open is updated in place (same
    failure reported again). One that was being retried, skipped or resolved re-opens with attempts + 1:
    the problem came back. Safe against a concurrent call for the same key.
    """
    fields = _checked_fields(process, owner, reason, record, workflow_id, run_id)
    key = checks.key("dedupe_key", dedupe_key)
    row, created = _insert_unless_present(session, key, fields)
    if not created:
        for name, value in fields.items():
            if name in ("workflow_id", "run_id") and value is None:
                continue  # a report without a run keeps the run that raised it first
            setattr(row, name, value)
        if row.status != ExceptionStatus.OPEN:
            row.attempts += 1
            row.status = ExceptionStatus.OPEN
            row.resolved_at = None
        row.updated_at = utc_now()
        session.flush()
    return _item(row)


def open_exception_unless_present(
    session: Session,
    *,
    dedupe_key: str,
    process: str,
    owner: str,
    reason: str,
    record: Any,
    workflow_id: str | None = None,
    run_id: str | None = None,
) -> tuple[ExceptionItem, bool]:
    """Open a new item under `dedupe_key`, unless there is one already (whatever its status): that one comes
    back untouched and locked, so a caller that lost a race to open it can add to what the winner recorded
    rather than overwrite it. The flag says whether the item was opened here."""
    fields = _checked_fields(process, owner, reason, record, workflow_id, run_id)
    row, created = _insert_unless_present(session, checks.key("dedupe_key", dedupe_key), fields)
    return _item(row), created


def _checked_fields(
    process: str, owner: str, reason: str, record: Any, workflow_id: str | None, run_id: str | None
) -> dict[str, Any]:
    return {
        "process": checks.identifier("process", process, max_length=64),
        "owner": checks.choice("owner", owner, ExceptionOwner),
        "reason": checks.text("reason", reason),
        "record": checks.json_object("record", record),
        "workflow_id": checks.optional_key("workflow_id", workflow_id),
        "run_id": checks.optional_key("run_id", run_id, max_length=64),
    }


def _insert_unless_present(session: Session, key: str, fields: dict[str, Any]) -> tuple[ExceptionEntry, bool]:
    def find() -> ExceptionEntry | None:
        # Locks the row on PostgreSQL so two failures re-opening it count two attempts, not one.
        return session.scalar(
            select(ExceptionEntry).where(ExceptionEntry.dedupe_key == key).with_for_update()
        )

    def build() -> ExceptionEntry:
        now = utc_now()
        return ExceptionEntry(
            dedupe_key=key,
            **fields,
            status=ExceptionStatus.OPEN,
            created_at=now,
            updated_at=now,
            attempts=1,
        )

    return insert_unless_present(session, find=find, build=build)


def act_on_exception(
    session: Session,
    *,
    exception_id: int,
    action: str,
    actor: str,
    note: str | None = None,
    corrected_fields: Any = None,
) -> ExceptionItem:
    """Take a person's action. `skip` needs a note; `fix` needs corrected_fields and only `fix` takes them.

    Raises ExceptionNotFound for an unknown id and InvalidExceptionTransition when the item's status does
    not allow the action (for example retrying one already resolved).
    """
    chosen = checks.choice("action", action, ExceptionAction)
    actor = checks.key("actor", actor)
    note = checks.optional_text("note", note)
    if chosen == ExceptionAction.SKIP and note is None:
        raise InvalidLedgerInput("skip needs a note saying why the record may be skipped")
    corrections: dict[str, Any] | None = None
    if chosen == ExceptionAction.FIX:
        if corrected_fields is None:
            raise InvalidLedgerInput("fix needs corrected_fields: the field values to retry with")
        corrections = checks.json_object("corrected_fields", corrected_fields)
        if not corrections:
            raise InvalidLedgerInput("fix needs at least one corrected field")
    elif corrected_fields is not None:
        raise InvalidLedgerInput(f"corrected_fields go with the fix action, not {chosen}")

    row = session.scalar(
        select(ExceptionEntry).where(ExceptionEntry.id == _exception_id(exception_id)).with_for_update()
    )
    if row is None:
        raise ExceptionNotFound(f"no exception with id {exception_id}")
    allowed_from, target = _TRANSITIONS[chosen]
    if row.status not in allowed_from:
        allowed = " or ".join(sorted(allowed_from))
        raise InvalidExceptionTransition(
            f"exception {row.id} is {row.status}; {chosen} is only possible while it is {allowed}",
            exception_id=row.id,
            status=row.status,
            action=chosen,
        )
    now = utc_now()
    row.status = target
    row.resolution_action = chosen
    row.resolution_actor = actor
    row.resolution_note = note
    row.corrected_fields = corrections
    row.updated_at = now
    row.resolved_at = now if target in CLOSED_EXCEPTION_STATUSES else None
    session.flush()
    return _item(row)


def reopen_exception(session: Session, *, exception_id: int, note: str) -> ExceptionItem:
    """Put an item that is being retried back in its owner's queue, saying why the retry did not take.

    For the retry machinery itself (a correction the source system refused, a retried run that ended badly);
    a new failure reported by the process goes through `open_exception` instead. Keeps `attempts`: the
    problem did not come back, it never went away. Only a `retrying` item can be re-opened.
    """
    note = checks.text("note", note)
    row = session.scalar(
        select(ExceptionEntry).where(ExceptionEntry.id == _exception_id(exception_id)).with_for_update()
    )
    if row is None:
        raise ExceptionNotFound(f"no exception with id {exception_id}")
    if row.status != ExceptionStatus.RETRYING:
        raise InvalidExceptionTransition(
            f"exception {row.id} is {row.status}; only a retrying exception can be re-opened",
            exception_id=row.id,
            status=row.status,
            action="reopen",
        )
    row.status = ExceptionStatus.OPEN
    row.resolution_note = note
    row.updated_at = utc_now()
    row.resolved_at = None
    session.flush()
    return _item(row)


def lock_exception(session: Session, *, dedupe_key: str) -> ExceptionItem | None:
    """The item under `dedupe_key`, its row locked until the transaction ends, so a caller may read what it
    says and rewrite it (`amend_open_exception`) without another writer slipping in between. SQLite write
    transactions are serialised from their start, so the lock matters on PostgreSQL."""
    key = checks.key("dedupe_key", dedupe_key)
    row = session.scalar(select(ExceptionEntry).where(ExceptionEntry.dedupe_key == key).with_for_update())
    return None if row is None else _item(row)


def amend_open_exception(
    session: Session, *, dedupe_key: str, reason: str, record: Any
) -> ExceptionItem | None:
    """Say more about an item that is still open (a failure that goes on: counts, the latest error).

    Unlike `open_exception` it never re-opens anything: an item a person or the process has closed, or one
    being retried, is left as it is and None comes back, as it does for an unknown key.
    """
    key = checks.key("dedupe_key", dedupe_key)
    reason = checks.text("reason", reason)
    fields = checks.json_object("record", record)
    row = session.scalar(select(ExceptionEntry).where(ExceptionEntry.dedupe_key == key).with_for_update())
    if row is None or row.status != ExceptionStatus.OPEN:
        return None
    row.reason = reason
    row.record = fields
    row.updated_at = utc_now()
    session.flush()
    return _item(row)


def resolve_by_dedupe_key(
    session: Session, *, dedupe_key: str, actor: str, note: str
) -> ExceptionItem | None:
    """Resolve the item under `dedupe_key` if it still waits (open or retrying), recording who and why as a
    person's `resolve` would be; None when there is no such item or it is already closed."""
    key = checks.key("dedupe_key", dedupe_key)
    row = session.scalar(select(ExceptionEntry).where(ExceptionEntry.dedupe_key == key).with_for_update())
    if row is None or row.status not in _WAITING:
        return None
    return act_on_exception(
        session,
        exception_id=row.id,
        action=ExceptionAction.RESOLVE,
        actor=actor,
        note=checks.text("note", note),
    )


def get_exception(session: Session, *, exception_id: int) -> ExceptionItem | None:
    row = session.get(ExceptionEntry, _exception_id(exception_id))
    return None if row is None else _item(row)


def get_exception_by_dedupe_key(session: Session, *, dedupe_key: str) -> ExceptionItem | None:
    key = checks.key("dedupe_key", dedupe_key)
    row = session.scalar(select(ExceptionEntry).where(ExceptionEntry.dedupe_key == key))
    return None if row is None else _item(row)


def list_exceptions(
    session: Session,
    *,
    owner: str | None = None,
    status: str | None = None,
    process: str | None = None,
    limit: int = 200,
) -> list[ExceptionItem]:
    """Items matching every filter given, oldest first (the longest waiting come first)."""
    query = select(ExceptionEntry)
    if owner is not None:
        query = query.where(ExceptionEntry.owner == checks.choice("owner", owner, ExceptionOwner))
    if status is not None:
        query = query.where(ExceptionEntry.status == checks.choice("status", status, ExceptionStatus))
    if process is not None:
        query = query.where(ExceptionEntry.process == checks.identifier("process", process, max_length=64))
    query = query.order_by(ExceptionEntry.created_at, ExceptionEntry.id).limit(checks.limit(limit))
    return [_item(row) for row in session.scalars(query)]


def exception_counts_by_owner(session: Session) -> dict[ExceptionOwner, OwnerExceptionSummary]:
    """Every owner's counts by status (zeros included) and its oldest waiting item, for the ops page."""
    counts = {owner: dict.fromkeys(ExceptionStatus, 0) for owner in ExceptionOwner}
    oldest: dict[ExceptionOwner, datetime] = {}
    rows = session.execute(
        select(
            ExceptionEntry.owner, ExceptionEntry.status, func.count(), func.min(ExceptionEntry.created_at)
        ).group_by(ExceptionEntry.owner, ExceptionEntry.status)
    )
    for owner_value, status_value, count, first_created in rows:
        owner, status = ExceptionOwner(owner_value), ExceptionStatus(status_value)
        counts[owner][status] = count
        if status in _WAITING and (owner not in oldest or first_created < oldest[owner]):
            oldest[owner] = first_created
    return {
        owner: OwnerExceptionSummary(
            owner=owner, by_status=counts[owner], oldest_waiting_since=oldest.get(owner)
        )
        for owner in ExceptionOwner
    }


def _exception_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidLedgerInput(f"exception_id must be a positive integer, got {value!r}")
    return value


def _item(row: ExceptionEntry) -> ExceptionItem:
    resolution = None
    if row.resolution_action is not None and row.resolution_actor is not None:
        resolution = Resolution(
            action=ExceptionAction(row.resolution_action),
            actor=row.resolution_actor,
            note=row.resolution_note,
            corrected_fields=row.corrected_fields,
        )
    return ExceptionItem(
        id=row.id,
        dedupe_key=row.dedupe_key,
        process=row.process,
        owner=ExceptionOwner(row.owner),
        reason=row.reason,
        record=row.record,
        status=ExceptionStatus(row.status),
        workflow_id=row.workflow_id,
        run_id=row.run_id,
        resolution=resolution,
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        attempts=row.attempts,
    )
