"""Vendor incidents in the exception queue, on SQLite and PostgreSQL: one item per vendor and operation,
amended while it is open, resolved by ps-sync with a note and an audit event, safe against concurrent
reports."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from activities.errors import to_application_error
from activities.vendor_incidents import (
    PROCESS,
    FailedCall,
    IncidentKind,
    incident_record,
    open_incidents,
    report_failed_call,
    resolve_incident,
    vendor_failure,
)
from connectors.errors import Unavailable
from ledger.audit import audit_trail
from ledger.database import Database
from ledger.exception_queue import (
    act_on_exception,
    amend_open_exception,
    get_exception_by_dedupe_key,
    list_exceptions,
    lock_exception,
    open_exception,
    resolve_by_dedupe_key,
)
from ledger.vocab import ExceptionStatus

KIND = IncidentKind(vendor="xero", operation="post_invoice")
STARTED = datetime(2026, 5, 4, 9, 30, tzinfo=UTC)


def _failed(
    run: str, attempt: int, *, activity_id: str = "7", message: str = "Service Unavailable"
) -> FailedCall:
    failure = vendor_failure(to_application_error(Unavailable(message, system="xero", status_code=503)))
    assert failure is not None
    return FailedCall(
        failure=failure,
        operation="post_invoice",
        call=f"{run}/{activity_id}",
        workflow_id=f"time-to-billing:{run}:2026-04",
        run_id=run,
        attempt=attempt,
        first_scheduled=STARTED,
        failed_at=STARTED + timedelta(seconds=15 * attempt),
    )


def _open_item(db: Database, key: str = "time_to_billing:P-1:2026-04:posting") -> int:
    with db.session() as session:
        return open_exception(
            session,
            dedupe_key=key,
            process="time_to_billing",
            owner="finance",
            reason="the ERP refused the invoice",
            record={"project_id": "P-1"},
        ).id


def test_amend_rewrites_only_an_open_item(db: Database) -> None:
    item_id = _open_item(db)
    with db.session() as session:
        amended = amend_open_exception(
            session, dedupe_key="time_to_billing:P-1:2026-04:posting", reason="still refused", record={"n": 2}
        )
    assert amended is not None and amended.reason == "still refused" and amended.record == {"n": 2}
    assert amended.attempts == 1 and amended.status == ExceptionStatus.OPEN
    with db.session() as session:
        act_on_exception(session, exception_id=item_id, action="skip", actor="ops", note="known")
        assert amend_open_exception(session, dedupe_key=amended.dedupe_key, reason="x", record={}) is None
        assert amend_open_exception(session, dedupe_key="no-such-key", reason="x", record={}) is None
        skipped = get_exception_by_dedupe_key(session, dedupe_key=amended.dedupe_key)
    assert (
        skipped is not None
        and skipped.status == ExceptionStatus.SKIPPED
        and skipped.reason == "still refused"
    )


def test_resolve_by_dedupe_key_resolves_what_waits_and_leaves_the_closed_alone(db: Database) -> None:
    _open_item(db)
    with db.session() as session:
        locked = lock_exception(session, dedupe_key="time_to_billing:P-1:2026-04:posting")
        resolved = resolve_by_dedupe_key(
            session, dedupe_key="time_to_billing:P-1:2026-04:posting", actor="ps-sync", note="went through"
        )
        again = resolve_by_dedupe_key(
            session, dedupe_key="time_to_billing:P-1:2026-04:posting", actor="ps-sync", note="twice"
        )
        unknown = resolve_by_dedupe_key(session, dedupe_key="nothing-here", actor="ps-sync", note="n/a")
    assert locked is not None and locked.status == ExceptionStatus.OPEN
    assert resolved is not None and resolved.status == ExceptionStatus.RESOLVED
    assert resolved.resolution is not None and resolved.resolution.actor == "ps-sync"
    assert resolved.resolution.note == "went through" and resolved.resolved_at is not None
    assert again is None and unknown is None


def test_an_outage_is_one_item_that_counts_calls_runs_and_attempts(db: Database) -> None:
    with db.session() as session:
        assert report_failed_call(session, _failed("run-a", 4), may_open=False) is None
        opened = report_failed_call(session, _failed("run-a", 5), may_open=True)
        joined = report_failed_call(session, _failed("run-b", 1, message="Gateway Timeout"), may_open=False)
        again = report_failed_call(session, _failed("run-a", 6), may_open=True)
    assert opened is not None and joined is not None and again is not None
    assert opened.failed_attempts == 5 and opened.runs == ["time-to-billing:run-a:2026-04"]
    assert joined.failed_attempts == 6 and joined.last_error == "Gateway Timeout"
    assert again.failed_attempts == 7 and again.highest_attempt == 6 and again.affected_runs == "2"
    assert again.calls == ["run-a/7", "run-b/7"]
    with db.session() as session:
        items = list_exceptions(session, process=PROCESS)
        trail = audit_trail(session, key=KIND.dedupe_key)
    assert len(items) == 1
    item = items[0]
    assert item.owner == "integration_support" and item.status == ExceptionStatus.OPEN
    assert item.dedupe_key == "vendor-trouble:xero:post_invoice"
    assert item.workflow_id == "time-to-billing:run-a:2026-04"
    assert item.reason.startswith(
        "xero post_invoice keeps failing: 7 failed attempts since 2026-05-04 09:30 UTC"
    )
    assert "2 runs waiting; last error (503): Service Unavailable" in item.reason
    assert incident_record(item) == again
    assert [entry.action for entry in trail] == ["vendor_trouble_opened"]


def test_a_success_resolves_the_incident_as_ps_sync_and_audits_it(db: Database) -> None:
    with db.session() as session:
        report_failed_call(session, _failed("run-a", 5), may_open=True)
        resolved = resolve_incident(
            session,
            KIND,
            workflow_id="time-to-billing:run-a:2026-04",
            run_id="run-a",
            attempt=6,
            at=STARTED + timedelta(minutes=3),
        )
        twice = resolve_incident(session, KIND, workflow_id=None, run_id=None, attempt=7, at=STARTED)
        still_open = open_incidents(session)
        trail = audit_trail(session, key=KIND.dedupe_key)
    assert resolved is not None and resolved.status == ExceptionStatus.RESOLVED
    assert resolved.resolution is not None and resolved.resolution.actor == "ps-sync"
    assert resolved.resolution.note == (
        "xero post_invoice succeeded again at 2026-05-04 09:33:00 UTC "
        "(attempt 6 for time-to-billing:run-a:2026-04): the vendor answers"
    )
    assert twice is None and still_open == {}
    assert [entry.action for entry in trail] == ["vendor_trouble_resolved", "vendor_trouble_opened"]
    assert trail[0].actor == "ps-sync" and trail[0].detail["exception_id"] == resolved.id
    assert trail[0].detail["failed_attempts"] == 5

    # The next outage re-opens the same item with a record of its own.
    with db.session() as session:
        record = report_failed_call(session, _failed("run-c", 5), may_open=True)
        items = list_exceptions(session, process=PROCESS)
    assert (
        record is not None
        and record.runs == ["time-to-billing:run-c:2026-04"]
        and record.failed_attempts == 5
    )
    assert len(items) == 1 and items[0].status == ExceptionStatus.OPEN and items[0].attempts == 2


def test_concurrent_reports_of_one_outage_make_one_item_and_lose_no_run(db: Database) -> None:
    def report(index: int) -> None:
        with db.session() as session:
            report_failed_call(session, _failed(f"run-{index}", 5), may_open=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(report, range(16)))
    with db.session() as session:
        items = list_exceptions(session, process=PROCESS)
    assert len(items) == 1
    record = incident_record(items[0])
    assert record is not None and record.affected_runs == "16" and record.failed_attempts == 16 * 5
