"""The vendor-trouble interceptor's decisions: which failures count, when a call has failed long enough, one
incident per vendor and operation, resolution by the success of a call it lists (here or on another
worker), no ledger work for ordinary successes, and never an activity failed by its own bookkeeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput

from activities.errors import to_application_error
from activities.vendor_incidents import PROCESS, Thresholds, incident_record, vendor_failure
from activities.vendor_trouble import VendorTroubleInterceptor, VendorTroubleSettings, VendorTroubleWatch
from connectors.errors import AuthFailed, NotFound, RateLimited, Rejected, Timeout, Unavailable
from ledger.audit import audit_trail
from ledger.database import Database
from ledger.exception_queue import act_on_exception, list_exceptions
from ledger.records import ExceptionItem
from ledger.vocab import ExceptionStatus

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
SETTINGS = VendorTroubleSettings(
    thresholds=Thresholds(attempts=5, after=timedelta(minutes=2)),
    recheck=timedelta(milliseconds=50),
    update_every=timedelta(seconds=30),
)


class CountingDatabase(Database):
    """A real SQLite ledger that counts the transactions opened on it."""

    transactions = 0

    @contextmanager
    def session(self, *, read_only: bool = False) -> Iterator[Session]:
        self.transactions += 1
        with super().session(read_only=read_only) as session:
            yield session


class Clock:
    """Real time moving on from T0, which a test can also jump forward."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._jumped = 0.0

    @property
    def mono(self) -> float:
        return time.monotonic() - self._started + self._jumped

    @property
    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.mono)

    def advance(self, seconds: float) -> None:
        self._jumped += seconds


@pytest.fixture
def database(tmp_path: Path) -> Iterator[CountingDatabase]:
    database = CountingDatabase(Database.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}").engine)
    database.migrate()
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


def watch_on(
    database: Database, clock: Clock, settings: VendorTroubleSettings = SETTINGS
) -> VendorTroubleWatch:
    return VendorTroubleWatch(database, settings, clock=lambda: clock.now, monotonic=lambda: clock.mono)


def info(
    run: str,
    attempt: int,
    *,
    activity_type: str = "post_invoice",
    clock: Clock,
    first: datetime = T0,
    scheduled: datetime | None = None,
) -> activity.Info:
    return replace(
        ActivityEnvironment.default_info(),
        activity_id="5",
        activity_type=activity_type,
        attempt=attempt,
        workflow_id=f"time-to-billing:{run}:2026-04",
        workflow_run_id=run,
        workflow_type="TimeToBilling",
        scheduled_time=first,
        current_attempt_scheduled_time=scheduled or clock.now - timedelta(milliseconds=10),
        started_time=clock.now,
    )


def unavailable(message: str = "Service Unavailable", system: str = "xero") -> ApplicationError:
    return to_application_error(Unavailable(message, system=system, status_code=503))


def items(database: Database) -> list[ExceptionItem]:
    with database.session() as session:
        return list_exceptions(session, process=PROCESS)


# --- which failures count ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "counted"),
    [
        (Unavailable("Service Unavailable", system="xero", status_code=503), ("xero", "Unavailable", 503)),
        (RateLimited("slow down", system="kantata", retry_after=30), ("kantata", "RateLimited", 429)),
        (Timeout("read timed out", system="salesforce"), ("salesforce", "Timeout", None)),
        (Rejected("ContactID is not valid", system="xero"), None),
        (NotFound("no such invoice", system="xero", status_code=404), None),
        (AuthFailed("invalid_client", system="xero", status_code=401), None),
    ],
)
def test_only_failures_a_retry_may_cure_count_as_vendor_trouble(
    error: Any, counted: tuple[str, str, int | None] | None
) -> None:
    failure = vendor_failure(to_application_error(error))
    if counted is None:
        assert failure is None
    else:
        assert failure is not None
        assert (failure.vendor, failure.error_type, failure.status_code) == counted
        assert failure.message == error.message


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug of ours"),
        ApplicationError("no contract recorded", type="NoContract"),
        ApplicationError("odd details", "just a string", type="Unavailable"),
        ApplicationError("no system", {"status_code": 503}, type="Unavailable"),
        RuntimeError("xero: Service Unavailable"),
    ],
)
def test_failures_that_name_no_vendor_are_not_vendor_trouble(error: BaseException) -> None:
    assert vendor_failure(error) is None


# --- one incident per vendor and operation ---------------------------------------------------------------


async def test_a_call_failing_past_the_attempt_threshold_opens_one_incident_that_other_runs_join(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    for attempt in range(1, 5):
        await watch.failed(info("run-a", attempt, clock=clock), unavailable())
        clock.advance(2**attempt)
    assert database.transactions == 0 and items(database) == []

    await watch.failed(info("run-a", 5, clock=clock), unavailable())
    clock.advance(1)
    # A second run on its first attempt joins the open incident rather than opening another.
    await watch.failed(info("run-b", 1, clock=clock), unavailable("Gateway Timeout"))
    # The same operation on another vendor, or another operation on this one, is another incident.
    await watch.failed(info("run-c", 5, clock=clock, activity_type="ensure_customer"), unavailable())
    await watch.failed(info("run-d", 5, clock=clock), unavailable(system="tryton"))

    found = {item.dedupe_key: item for item in items(database)}
    assert sorted(found) == [
        "vendor-trouble:tryton:post_invoice",
        "vendor-trouble:xero:ensure_customer",
        "vendor-trouble:xero:post_invoice",
    ]
    xero = found["vendor-trouble:xero:post_invoice"]
    record = incident_record(xero)
    assert record is not None
    assert record.runs == ["time-to-billing:run-a:2026-04", "time-to-billing:run-b:2026-04"]
    assert record.failed_attempts == 6 and record.highest_attempt == 5 and record.since == T0
    assert record.last_error == "Gateway Timeout" and record.status_code == 503
    assert xero.owner == "integration_support" and xero.status == ExceptionStatus.OPEN


async def test_a_call_failing_for_long_enough_opens_an_incident_before_the_attempt_threshold(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    clock.advance(119)
    await watch.failed(info("run-a", 2, clock=clock), unavailable())
    assert items(database) == []
    clock.advance(1)
    await watch.failed(info("run-a", 3, clock=clock), unavailable())
    [item] = items(database)
    record = incident_record(item)
    assert record is not None and record.highest_attempt == 3 and record.failed_attempts == 3


async def test_failures_that_name_no_vendor_never_open_an_incident(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    rejected = to_application_error(Rejected("AccountCode is not valid", system="xero"))
    for attempt in (5, 9, 40):
        await watch.failed(info("run-a", attempt, clock=clock), rejected)
        await watch.failed(info("run-a", attempt, clock=clock), ValueError("a bug"))
    assert database.transactions == 0 and items(database) == []


async def test_counts_of_a_known_incident_are_written_now_and_then_not_on_every_failure(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    await watch.failed(info("run-a", 5, clock=clock), unavailable())
    written = database.transactions
    for attempt in (6, 7, 8):
        clock.advance(5)
        await watch.failed(info("run-a", attempt, clock=clock), unavailable())
    assert database.transactions == written
    clock.advance(30)
    await watch.failed(info("run-a", 9, clock=clock), unavailable("Bad Gateway"))
    assert database.transactions == written + 1
    record = incident_record(items(database)[0])
    assert record is not None and record.failed_attempts == 9 and record.highest_attempt == 9
    assert record.last_error == "Bad Gateway"


# --- resolution -------------------------------------------------------------------------------------------


async def test_first_attempt_successes_never_touch_the_ledger(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    await watch.failed(info("run-a", 5, clock=clock), unavailable())
    before = database.transactions
    for index in range(200):
        watch.succeeded(info(f"run-{index}", 1, clock=clock))
    await watch.settled()
    assert database.transactions == before
    assert items(database)[0].status == ExceptionStatus.OPEN


async def test_a_listed_call_succeeding_again_resolves_the_incident_as_ps_sync(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    await watch.failed(info("run-a", 5, clock=clock), unavailable())
    clock.advance(16)
    watch.succeeded(info("run-a", 6, clock=clock))
    await watch.settled()
    [item] = items(database)
    assert item.status == ExceptionStatus.RESOLVED
    assert item.resolution is not None and item.resolution.actor == "ps-sync"
    assert item.resolution.note is not None
    assert item.resolution.note.startswith("xero post_invoice succeeded again at 2026-05-04 09:00:1")
    assert "(attempt 6 for time-to-billing:run-a:2026-04): the vendor answers" in item.resolution.note
    with database.session() as session:
        trail = audit_trail(session, key=item.dedupe_key)
    assert [entry.action for entry in trail] == ["vendor_trouble_resolved", "vendor_trouble_opened"]
    assert watch.known == {}


async def test_another_worker_resolves_an_incident_it_never_saw_open(
    database: CountingDatabase, clock: Clock
) -> None:
    opener, other = watch_on(database, clock), watch_on(database, clock)
    await opener.failed(info("run-a", 5, clock=clock), unavailable())
    await opener.failed(info("run-b", 2, clock=clock), unavailable())
    clock.advance(16)
    # A retried call no incident lists resolves nothing.
    other.succeeded(info("run-z", 3, clock=clock))
    await other.settled()
    assert items(database)[0].status == ExceptionStatus.OPEN
    clock.advance(1)
    other.succeeded(info("run-b", 3, clock=clock))
    await other.settled()
    assert items(database)[0].status == ExceptionStatus.RESOLVED


async def test_retried_successes_read_the_open_incidents_once_per_recheck_not_once_each(
    database: CountingDatabase, clock: Clock
) -> None:
    # The recheck is longer than the allowance for clocks that disagree, as in production.
    watch = watch_on(database, clock, replace(SETTINGS, recheck=timedelta(seconds=1.2)))
    clock.advance(60)
    before = database.transactions
    for index in range(20):
        watch.succeeded(info(f"run-{index}", 2, clock=clock))
    await watch.settled()
    assert database.transactions - before in (1, 2)
    read = database.transactions
    # Successes of attempts scheduled before the last read need no other.
    for index in range(20):
        watch.succeeded(info(f"run-{index}", 3, clock=clock, scheduled=clock.now - timedelta(seconds=5)))
    await watch.settled()
    assert database.transactions == read


async def test_a_person_closing_the_item_is_respected_until_a_call_fails_past_the_threshold_again(
    database: CountingDatabase, clock: Clock
) -> None:
    watch = watch_on(database, clock)
    await watch.failed(info("run-a", 5, clock=clock), unavailable())
    with database.session() as session:
        act_on_exception(
            session, exception_id=items(database)[0].id, action="resolve", actor="ops", note="seen"
        )
    clock.advance(20)
    await watch.failed(info("run-b", 1, clock=clock), unavailable())
    assert items(database)[0].status == ExceptionStatus.RESOLVED and watch.known == {}
    await watch.failed(info("run-a", 6, clock=clock), unavailable())
    [item] = items(database)
    assert item.status == ExceptionStatus.OPEN and item.attempts == 2


# --- the interceptor never fails an activity ------------------------------------------------------------


class _Returns(ActivityInboundInterceptor):
    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


async def _through(interceptor: VendorTroubleInterceptor, outcome: Any, attempt_info: activity.Info) -> Any:
    inbound = interceptor.intercept_activity(_Returns(outcome))
    environment = ActivityEnvironment()
    environment.info = attempt_info

    async def run() -> Any:
        return await inbound.execute_activity(
            ExecuteActivityInput(fn=run, args=(), executor=None, headers={})
        )

    return await environment.run(run)


async def test_a_broken_ledger_never_fails_an_activity_or_changes_its_failure(
    tmp_path: Path, clock: Clock
) -> None:
    # Never migrated: every ledger call fails.
    broken = Database.from_url(f"sqlite:///{tmp_path / 'empty.sqlite'}")
    interceptor = VendorTroubleInterceptor(watch_on(broken, clock))
    failure = unavailable()
    with pytest.raises(ApplicationError) as raised:
        await _through(interceptor, failure, info("run-a", 7, clock=clock))
    assert raised.value is failure
    assert await _through(interceptor, {"posted": True}, info("run-a", 8, clock=clock)) == {"posted": True}
    await interceptor.watch.settled()
    broken.dispose()


async def test_the_interceptor_opens_and_resolves_through_an_activity_context(
    database: CountingDatabase, clock: Clock
) -> None:
    interceptor = VendorTroubleInterceptor(watch_on(database, clock))
    with pytest.raises(ApplicationError):
        await _through(interceptor, unavailable(), info("run-a", 5, clock=clock))
    assert items(database)[0].status == ExceptionStatus.OPEN
    clock.advance(16)
    assert await _through(interceptor, "ok", info("run-a", 6, clock=clock)) == "ok"
    await interceptor.watch.settled()
    await asyncio.sleep(0)
    assert items(database)[0].status == ExceptionStatus.RESOLVED
