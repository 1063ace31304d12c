"""Vendor trouble as the exception queue holds it: one integration-support item per vendor and operation
while calls of that kind keep failing, saying what fails, how often, since when and which runs wait on it.

Here are the rules (which failures count, when a failing call has failed long enough, how one more failure
changes what the item says) and the ledger transactions that apply them; `activities.vendor_trouble` is
the worker interceptor that feeds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from activities.exception_actions import SYSTEM_ACTOR
from canonical import ExceptionOwner
from ledger.audit import append_audit
from ledger.exception_queue import (
    amend_open_exception,
    list_exceptions,
    lock_exception,
    open_exception,
    open_exception_unless_present,
    resolve_by_dedupe_key,
)
from ledger.records import ExceptionItem
from ledger.vocab import ExceptionStatus

PROCESS = "vendor_trouble"
KEY_PREFIX = "vendor-trouble"
# Enough to name the runs a person should look at; beyond it the item says "at least".
RUNS_LISTED = 1000
# The calls whose next success proves the vendor answers again; the newest are kept, as the oldest may have
# given up by now.
CALLS_LISTED = 500
ERROR_SHOWN = 500
AUDITED_ENTITY = "exception"


@dataclass(frozen=True)
class IncidentKind:
    """What an incident is about: one vendor, one operation (the activity type calling it)."""

    vendor: str
    operation: str

    @property
    def dedupe_key(self) -> str:
        return f"{KEY_PREFIX}:{self.vendor}:{self.operation}"


@dataclass(frozen=True)
class Thresholds:
    """When a failing vendor call has failed long enough to tell a person."""

    attempts: int
    after: timedelta


class VendorFailure(BaseModel):
    """A vendor's failure that a retry may cure, as `activities.errors` reports a ConnectorError."""

    model_config = ConfigDict(frozen=True)
    vendor: str
    error_type: str
    status_code: int | None
    message: str


def vendor_failure(error: BaseException) -> VendorFailure | None:
    """The vendor failure behind `error`; None when it is not the vendor's doing or no retry can cure it.

    Only a retryable ApplicationError carrying the connector's `system` counts: a business rejection (not
    retryable) is already an exception raised by the workflow, and a bug in our own code is no vendor's.
    """
    if not isinstance(error, ApplicationError) or error.non_retryable or not error.details:
        return None
    details = error.details[0]
    if not isinstance(details, Mapping):
        return None
    system = details.get("system")
    if not isinstance(system, str) or not system:
        return None
    status = details.get("status_code")
    message = details.get("message")
    return VendorFailure(
        vendor=system,
        error_type=error.type or "ApplicationError",
        status_code=status if isinstance(status, int) and not isinstance(status, bool) else None,
        message=(message if isinstance(message, str) and message else error.message)[:ERROR_SHOWN],
    )


class FailedCall(BaseModel):
    """One failed attempt of a vendor call, and the failures of calls already listed that were held back."""

    model_config = ConfigDict(frozen=True)
    failure: VendorFailure
    operation: str
    # `{workflow run id}/{activity id}`: every attempt of one call shares it.
    call: str
    workflow_id: str | None
    run_id: str | None
    attempt: int
    first_scheduled: datetime
    failed_at: datetime
    # Failed attempts of listed calls seen since the item was last written, and the highest of their attempts.
    held_failures: int = 0
    held_highest_attempt: int = 0

    @property
    def kind(self) -> IncidentKind:
        return IncidentKind(vendor=self.failure.vendor, operation=self.operation)


def past_threshold(call: FailedCall, thresholds: Thresholds) -> bool:
    return call.attempt >= thresholds.attempts or call.failed_at - call.first_scheduled >= thresholds.after


class IncidentRecord(BaseModel):
    """What the exception item records about the incident (its `record`)."""

    model_config = ConfigDict(frozen=True)
    vendor: str
    operation: str
    error_type: str
    status_code: int | None
    last_error: str
    # When the oldest failing call was first scheduled.
    since: datetime
    last_failed_at: datetime
    # Failed attempts of the calls listed, as far as the workers saw them.
    failed_attempts: int
    # The attempt the longest-failing call has reached.
    highest_attempt: int
    runs: list[str]
    # More runs were affected than are listed.
    more_runs: bool = False
    calls: list[str]

    @property
    def kind(self) -> IncidentKind:
        return IncidentKind(vendor=self.vendor, operation=self.operation)

    @property
    def affected_runs(self) -> str:
        return f"at least {len(self.runs)}" if self.more_runs else str(len(self.runs))

    @classmethod
    def started(cls, call: FailedCall) -> IncidentRecord:
        return cls(
            vendor=call.failure.vendor,
            operation=call.operation,
            error_type=call.failure.error_type,
            status_code=call.failure.status_code,
            last_error=call.failure.message,
            since=call.first_scheduled,
            last_failed_at=call.failed_at,
            failed_attempts=call.attempt + call.held_failures,
            highest_attempt=max(call.attempt, call.held_highest_attempt),
            runs=[call.workflow_id] if call.workflow_id else [],
            calls=[call.call],
        )

    def merged(self, call: FailedCall) -> IncidentRecord:
        """The record once `call` has failed again: a call seen for the first time brings all its attempts."""
        known_call = call.call in self.calls
        runs, more_runs = list(self.runs), self.more_runs
        if call.workflow_id and call.workflow_id not in runs:
            if len(runs) < RUNS_LISTED:
                runs.append(call.workflow_id)
            else:
                more_runs = True
        calls = self.calls if known_call else [*self.calls, call.call][-CALLS_LISTED:]
        return self.model_copy(
            update={
                "error_type": call.failure.error_type,
                "status_code": call.failure.status_code,
                "last_error": call.failure.message,
                "since": min(self.since, call.first_scheduled),
                "last_failed_at": max(self.last_failed_at, call.failed_at),
                "failed_attempts": self.failed_attempts
                + (1 if known_call else call.attempt)
                + call.held_failures,
                "highest_attempt": max(self.highest_attempt, call.attempt, call.held_highest_attempt),
                "runs": runs,
                "more_runs": more_runs,
                "calls": calls,
            }
        )

    def reason(self) -> str:
        status = f" ({self.status_code})" if self.status_code is not None else ""
        runs = self.affected_runs
        return (
            f"{self.vendor} {self.operation} keeps failing: {self.failed_attempts} failed attempts since "
            f"{self.since:%Y-%m-%d %H:%M} UTC (longest call on attempt {self.highest_attempt}), "
            f"{runs} run{'' if runs == '1' else 's'} waiting; last error{status}: {self.last_error}"
        )


def incident_record(item: ExceptionItem) -> IncidentRecord | None:
    """The incident an item records, or None when its record is not one (a person's edit, an older shape)."""
    try:
        return IncidentRecord.model_validate(item.record)
    except ValidationError:
        return None


def open_incidents(session: Session) -> dict[IncidentKind, IncidentRecord]:
    found: dict[IncidentKind, IncidentRecord] = {}
    for item in list_exceptions(session, process=PROCESS, status=ExceptionStatus.OPEN, limit=1000):
        record = incident_record(item)
        if record is not None:
            found[record.kind] = record
    return found


def report_failed_call(session: Session, call: FailedCall, *, may_open: bool) -> IncidentRecord | None:
    """Add `call` to its kind's open incident, or open one when `may_open` (the call is past the threshold).

    None when no incident is open and none may be opened; a closed item comes back open (the exception
    queue's rule), with a fresh record: the incident before it ended.
    """
    kind = call.kind
    record = IncidentRecord.started(call)
    opening: dict[str, Any] = {
        "dedupe_key": kind.dedupe_key,
        "process": PROCESS,
        "owner": ExceptionOwner.INTEGRATION_SUPPORT.value,
        "reason": record.reason(),
        "record": record,
        "workflow_id": call.workflow_id,
        "run_id": call.run_id,
    }
    current = lock_exception(session, dedupe_key=kind.dedupe_key)
    if current is None:
        if not may_open:
            return None
        current, created = open_exception_unless_present(session, **opening)
        if created:
            _audit_opened(session, call, current.id, record)
            return record
        # Another worker opened it meanwhile: what it recorded is added to, not overwritten.
    if current.status == ExceptionStatus.OPEN:
        known = incident_record(current)
        record = known.merged(call) if known is not None else record
        amend_open_exception(session, dedupe_key=kind.dedupe_key, reason=record.reason(), record=record)
        return record
    if not may_open:
        return None
    # Closed by a person or by a success, and failing again: the exception queue re-opens it.
    item = open_exception(session, **opening)
    _audit_opened(session, call, item.id, record)
    return record


def _audit_opened(session: Session, call: FailedCall, exception_id: int, record: IncidentRecord) -> None:
    append_audit(
        session,
        workflow_id=call.workflow_id,
        run_id=call.run_id,
        actor=SYSTEM_ACTOR,
        action="vendor_trouble_opened",
        entity=AUDITED_ENTITY,
        key=call.kind.dedupe_key,
        detail={"exception_id": exception_id, **_summary(record)},
    )


def resolve_incident(
    session: Session,
    kind: IncidentKind,
    *,
    workflow_id: str | None,
    run_id: str | None,
    attempt: int,
    at: datetime,
) -> ExceptionItem | None:
    """Resolve the kind's incident, as ps-sync, because a call it listed succeeded (on `attempt`)."""
    run = f" for {workflow_id}" if workflow_id else ""
    note = (
        f"{kind.vendor} {kind.operation} succeeded again at {at:%Y-%m-%d %H:%M:%S} UTC "
        f"(attempt {attempt}{run}): the vendor answers"
    )
    item = resolve_by_dedupe_key(session, dedupe_key=kind.dedupe_key, actor=SYSTEM_ACTOR, note=note)
    if item is not None:
        record = incident_record(item)
        append_audit(
            session,
            workflow_id=workflow_id,
            run_id=run_id,
            actor=SYSTEM_ACTOR,
            action="vendor_trouble_resolved",
            entity=AUDITED_ENTITY,
            key=kind.dedupe_key,
            detail={"exception_id": item.id, "note": note, **(_summary(record) if record else {})},
        )
    return item


def _summary(record: IncidentRecord) -> dict[str, Any]:
    return {
        "vendor": record.vendor,
        "operation": record.operation,
        "failed_attempts": record.failed_attempts,
        "affected_runs": record.affected_runs,
        "since": record.since.isoformat(),
        "last_error": record.last_error,
        "status_code": record.status_code,
    }
