"""Vendor trouble made visible: a worker interceptor telling integration support that a vendor keeps failing.

Temporal retries a failing vendor call for hours, quietly. This interceptor watches every activity's outcome:
a call still failing past the threshold (`Settings.vendor_trouble_attempts` attempts, or
`vendor_trouble_after_seconds` since it was first scheduled) opens one exception for its vendor and
operation, which later failures of that kind update (attempts, runs waiting, last error) rather than
duplicate; the first success of a call the incident lists resolves it, as ps-sync, with a note.

What it costs: a first-attempt success, nearly every call, is a comparison and nothing more. The ledger is
touched by failures (inline, before the failure reaches Temporal, so the call is listed before its retry can
succeed on another worker) and by retried calls' successes (in the background: a success is never delayed).
Each worker keeps the open incidents it knows in memory and re-reads them, at most every
`vendor_trouble_recheck_seconds`, only when a retried call succeeds that they might list, so an incident
another worker opened is still resolved here. Ledger trouble is logged and never fails an activity.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from activities.vendor_incidents import (
    FailedCall,
    IncidentKind,
    IncidentRecord,
    Thresholds,
    open_incidents,
    past_threshold,
    report_failed_call,
    resolve_incident,
    vendor_failure,
)
from config import Settings
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.records import ExceptionItem

log = structlog.get_logger("pssync.vendor_trouble")

T = TypeVar("T")
# A ledger that answers slower than this is treated as down for the moment: the activity goes on.
LEDGER_TIMEOUT = timedelta(seconds=10)
# Temporal's clock and this worker's may disagree by this much.
CLOCK_MARGIN = timedelta(seconds=1)


class _Unanswered:
    """What a ledger call gives back when the ledger failed or took too long."""


UNANSWERED = _Unanswered()


@dataclass(frozen=True)
class VendorTroubleSettings:
    thresholds: Thresholds
    # The least time between two reads of the open incidents.
    recheck: timedelta
    # The least time between two writes of an incident's counts when nothing new (call, run) joins it.
    update_every: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> VendorTroubleSettings:
        return cls(
            thresholds=Thresholds(
                attempts=settings.vendor_trouble_attempts,
                after=timedelta(seconds=settings.vendor_trouble_after_seconds),
            ),
            recheck=timedelta(seconds=settings.vendor_trouble_recheck_seconds),
            update_every=timedelta(seconds=settings.vendor_trouble_update_seconds),
        )


def call_id(info: activity.Info) -> str:
    return f"{info.workflow_run_id or '-'}/{info.activity_id}"


@dataclass
class KnownIncident:
    """An incident this worker knows to be open, as the ledger held it when last read or written."""

    calls: set[str]
    runs: set[str]
    runs_full: bool
    written_at: float
    held_failures: int = 0
    held_highest_attempt: int = 0

    @classmethod
    def of(cls, record: IncidentRecord, written_at: float) -> KnownIncident:
        return cls(
            calls=set(record.calls),
            runs=set(record.runs),
            runs_full=record.more_runs,
            written_at=written_at,
        )

    def must_write(self, call: FailedCall, now: float, update_every: timedelta) -> bool:
        """A new call or run is written at once (another worker may see it succeed); counts now and then."""
        new_run = call.workflow_id is not None and call.workflow_id not in self.runs and not self.runs_full
        due = now - self.written_at >= update_every.total_seconds()
        return call.call not in self.calls or new_run or due

    def hold(self, call: FailedCall) -> None:
        self.held_failures += 1
        self.held_highest_attempt = max(self.held_highest_attempt, call.attempt)

    def with_held(self, call: FailedCall) -> FailedCall:
        return call.model_copy(
            update={"held_failures": self.held_failures, "held_highest_attempt": self.held_highest_attempt}
        )


@dataclass
class VendorTroubleWatch:
    """What this worker process knows of the open vendor incidents, and the ledger work that keeps it true.

    Its state is touched only on the worker's event loop; ledger calls run in threads, one at a time.
    """

    database: Database
    settings: VendorTroubleSettings
    clock: Callable[[], datetime] = utc_now
    monotonic: Callable[[], float] = time.monotonic
    known: dict[IncidentKind, KnownIncident] = field(default_factory=dict)
    # When the open incidents were last read from the ledger (None: never), on `clock`.
    loaded_at: datetime | None = None
    _loaded_mono: float | None = None
    _ledger_quiet_until: float = 0.0
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # --- what the interceptor tells it ----------------------------------------------------------------------

    async def failed(self, info: activity.Info, error: BaseException) -> None:
        failure = vendor_failure(error)
        if failure is None:
            return
        call = FailedCall(
            failure=failure,
            operation=info.activity_type,
            call=call_id(info),
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            attempt=info.attempt,
            first_scheduled=info.scheduled_time,
            failed_at=self.clock(),
        )
        past = past_threshold(call, self.settings.thresholds)
        known = self.known.get(call.kind)
        if known is None and not past:
            return
        now = self.monotonic()
        if known is not None and (
            not known.must_write(call, now, self.settings.update_every) or now < self._ledger_quiet_until
        ):
            known.hold(call)
            return
        if now < self._ledger_quiet_until:
            return
        report = known.with_held(call) if known is not None else call
        record = await self._in_ledger(
            "report", lambda session: report_failed_call(session, report, may_open=past), call.kind
        )
        if isinstance(record, _Unanswered):
            if known is not None:
                known.hold(call)
            return
        if record is None:
            # Closed meanwhile (by a person, or another worker saw a success) and this call is not yet past
            # the threshold: nothing to report.
            self.known.pop(call.kind, None)
            return
        if known is None:
            log.warning(
                "vendor_trouble_reported",
                vendor=record.vendor,
                operation=record.operation,
                failed_attempts=record.failed_attempts,
                affected_runs=record.affected_runs,
                since=record.since.isoformat(),
                status_code=record.status_code,
                last_error=record.last_error,
            )
        fresh = KnownIncident.of(record, written_at=self.monotonic())
        if known is not None and self.known.get(call.kind) is known:
            # Failures held while this report was being written wait for the next one.
            fresh.held_failures = known.held_failures - report.held_failures
            fresh.held_highest_attempt = known.held_highest_attempt
        self.known[call.kind] = fresh

    def succeeded(self, info: activity.Info) -> None:
        """A call succeeded. Only a retried one can be listed by an incident, and only then is there work."""
        if info.attempt < 2:
            return
        call = call_id(info)
        if self._listing(call) is None and self._knows_all_since(info.current_attempt_scheduled_time):
            return
        task = asyncio.get_running_loop().create_task(
            self._settle(
                call,
                since=info.current_attempt_scheduled_time,
                workflow_id=info.workflow_id,
                run_id=info.workflow_run_id,
                attempt=info.attempt,
            )
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def settled(self) -> None:
        """Wait for the background work started so far (for tests: the worker lets it finish on its own)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the work -------------------------------------------------------------------------------------------

    def _listing(self, call: str) -> IncidentKind | None:
        for kind, known in self.known.items():
            if call in known.calls:
                return kind
        return None

    def _knows_all_since(self, moment: datetime) -> bool:
        """Whether the open incidents were read after `moment`: an incident listing a call whose attempt was
        scheduled then listed it before that attempt, so the read saw it."""
        return self.loaded_at is not None and self.loaded_at - CLOCK_MARGIN > moment

    async def _settle(
        self, call: str, *, since: datetime, workflow_id: str | None, run_id: str | None, attempt: int
    ) -> None:
        try:
            kind = self._listing(call)
            if kind is None:
                await self._reload_unless_known(since)
                kind = self._listing(call)
            if kind is None:
                return
            at = self.clock()
            item = await self._in_ledger(
                "resolve",
                lambda session: resolve_incident(
                    session, kind, workflow_id=workflow_id, run_id=run_id, attempt=attempt, at=at
                ),
                kind,
            )
            if isinstance(item, _Unanswered):
                return
            self.known.pop(kind, None)
            if isinstance(item, ExceptionItem):
                log.info(
                    "vendor_trouble_resolved",
                    vendor=kind.vendor,
                    operation=kind.operation,
                    exception_id=item.id,
                    workflow_id=workflow_id,
                    attempt=attempt,
                )
        except Exception as error:  # a background task's failure would otherwise go unseen
            log.warning("vendor_trouble_unsettled", call=call, error=f"{type(error).__name__}: {error}")

    async def _reload_unless_known(self, since: datetime) -> None:
        """Read the open incidents unless a read after `since` was made while this one waited its turn; never
        sooner than `recheck` after the last read."""
        async with self._reload_lock:
            if self._knows_all_since(since):
                return
            if self._loaded_mono is not None:
                wait = self._loaded_mono + self.settings.recheck.total_seconds() - self.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            await self._reload()

    async def _reload(self) -> None:
        started, started_mono = self.clock(), self.monotonic()
        found = await self._in_ledger("reload", open_incidents, None)
        if isinstance(found, _Unanswered):
            return
        self.known = {
            kind: self.known[kind]
            if kind in self.known
            else KnownIncident.of(record, written_at=started_mono)
            for kind, record in found.items()
        }
        for kind, record in found.items():
            self.known[kind].calls |= set(record.calls)
            self.known[kind].runs |= set(record.runs)
        self.loaded_at, self._loaded_mono = started, started_mono

    async def _in_ledger(
        self, what: str, work: Callable[[Session], T], kind: IncidentKind | None
    ) -> T | _Unanswered:
        """`work(session)` in one ledger transaction, in a thread, one at a time; UNANSWERED if it failed."""

        def run() -> T:
            with self.database.session() as session:
                return work(session)

        try:
            async with asyncio.timeout(LEDGER_TIMEOUT.total_seconds()):
                async with self._lock:
                    return await asyncio.to_thread(run)
        except Exception as error:
            # Leave the ledger alone for a while: every failing call waiting on it would delay its retry.
            self._ledger_quiet_until = self.monotonic() + self.settings.recheck.total_seconds()
            log.warning(
                "vendor_trouble_unrecorded",
                step=what,
                vendor=kind.vendor if kind else None,
                operation=kind.operation if kind else None,
                error=f"{type(error).__name__}: {error}"[:500],
            )
            return UNANSWERED


class _WatchOutcome(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, watch: VendorTroubleWatch) -> None:
        super().__init__(next)
        self._watch = watch

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            result = await self.next.execute_activity(input)
        except Exception as error:
            try:
                await self._watch.failed(activity.info(), error)
            except Exception as unexpected:
                log.warning("vendor_trouble_unwatched", error=f"{type(unexpected).__name__}: {unexpected}")
            raise
        try:
            self._watch.succeeded(activity.info())
        except Exception as unexpected:
            log.warning("vendor_trouble_unwatched", error=f"{type(unexpected).__name__}: {unexpected}")
        return result


class VendorTroubleInterceptor(Interceptor):
    def __init__(self, watch: VendorTroubleWatch) -> None:
        self.watch = watch

    @classmethod
    def from_settings(cls, settings: Settings, database: Database) -> VendorTroubleInterceptor:
        return cls(VendorTroubleWatch(database, VendorTroubleSettings.from_settings(settings)))

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _WatchOutcome(next, self.watch)
