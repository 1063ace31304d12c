"""The call budget every worker shares through the ledger, on SQLite and PostgreSQL.

Two `Database` objects on one database stand in for two workers: each has its own engine and connections,
as two processes would. Time is an injected clock, so a minute passes in no time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from ledger.call_budget import ARRIVAL_MARGIN_SECONDS, LedgerCallBudget, LedgerCallBudgets
from ledger.database import Database

VENDOR, TENANT = "xero", "4e3a5f1c-0000-4000-8000-00000000a001"
# How long a call counts: the vendor's minute, and a second for the request to arrive there.
COUNTED = 60.0 + ARRIVAL_MARGIN_SECONDS
START = 1_800_000_000.0


class Clock:
    """Epoch seconds that move only when a test moves them; safe to read from many threads."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def other_worker(db: Database) -> Iterator[Database]:
    """A second engine on the same database: another worker process's view of the ledger."""
    database = Database.from_url(db.engine.url.render_as_string(hide_password=False))
    yield database
    database.dispose()


def _budget(
    database: Database, clock: Clock, *, per_minute: int = 6, background_reserve: int = 2
) -> LedgerCallBudget:
    return LedgerCallBudgets(database, clock=clock).budget(
        vendor=VENDOR, tenant=TENANT, per_minute=per_minute, background_reserve=background_reserve
    )


def test_two_workers_never_hand_out_more_than_the_limit_in_a_rolling_minute(
    db: Database, other_worker: Database, clock: Clock
) -> None:
    first, second = _budget(db, clock), _budget(other_worker, clock)

    granted = []
    for step in range(10):
        budget = first if step % 2 == 0 else second
        granted.append(budget.wait_needed() == 0.0)
        clock.now += 1.0

    # Six calls at t=0..5; the seventh (t=6) waits until the first stops counting at t=61.
    assert granted == [True] * 6 + [False] * 4
    assert second.wait_needed() == pytest.approx(COUNTED - 10.0)
    clock.now = START + COUNTED  # the call made at t=0 has stopped counting, the one at t=1 has not
    assert first.wait_needed() == 0.0
    assert second.wait_needed() == pytest.approx(1.0)
    assert first.calls_in_window() == second.calls_in_window() == 6


def test_a_budget_for_another_tenant_or_vendor_is_counted_apart(db: Database, clock: Clock) -> None:
    budgets = LedgerCallBudgets(db, clock=clock)
    ours = budgets.budget(vendor=VENDOR, tenant=TENANT, per_minute=1, background_reserve=0)
    other_tenant = budgets.budget(vendor=VENDOR, tenant="another-org", per_minute=1, background_reserve=0)
    other_vendor = budgets.budget(vendor="kantata", tenant=TENANT, per_minute=1, background_reserve=0)

    assert [b.wait_needed() for b in (ours, other_tenant, other_vendor)] == [0.0, 0.0, 0.0]
    assert ours.wait_needed() == COUNTED


def test_concurrent_reservations_from_threads_of_two_workers_grant_exactly_the_limit(
    db: Database, other_worker: Database, clock: Clock
) -> None:
    limit, threads_per_worker, attempts = 20, 4, 8
    budgets = [_budget(db, clock, per_minute=limit), _budget(other_worker, clock, per_minute=limit)]
    barrier = threading.Barrier(2 * threads_per_worker)
    granted: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def reserve(budget: LedgerCallBudget) -> None:
        try:
            # Together, so the first reservations also race to create the tenant's row.
            barrier.wait(timeout=30)
            mine = sum(1 for _ in range(attempts) if budget.wait_needed() == 0.0)
            with lock:
                granted.append(mine)
        except BaseException as error:
            errors.append(error)

    threads = [
        threading.Thread(target=reserve, args=(budget,))
        for budget in budgets
        for _ in range(threads_per_worker)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert sum(granted) == limit  # 64 attempts, exactly 20 calls
    assert budgets[0].calls_in_window() == limit


def test_a_retry_after_seen_by_one_worker_holds_back_every_worker(
    db: Database, other_worker: Database, clock: Clock
) -> None:
    refused_here, elsewhere = _budget(db, clock), _budget(other_worker, clock)

    refused_here.refused(12.5)

    assert elsewhere.wait_needed() == pytest.approx(12.5)
    assert elsewhere.wait_needed(background=True) == pytest.approx(12.5)
    clock.now += 12.5
    assert elsewhere.wait_needed() == 0.0
    assert elsewhere.held_back == 2


def test_a_refusal_without_retry_after_holds_back_for_a_whole_minute(db: Database, clock: Clock) -> None:
    budget = _budget(db, clock)
    budget.refused(None)
    assert budget.wait_needed() == 60.0


def test_background_calls_stop_at_the_reserve_while_foreground_calls_still_go(
    db: Database, other_worker: Database, clock: Clock
) -> None:
    poller, poster = _budget(db, clock), _budget(other_worker, clock)  # 6 a minute, 2 kept

    polls = []
    for _ in range(6):
        polls.append(poller.wait_needed(background=True))
        clock.now += 1.0

    assert polls[:4] == [0.0] * 4
    # Background may call again once the first of its four calls (t=0) stops counting.
    assert polls[4] == pytest.approx(COUNTED - 4.0) and polls[5] == pytest.approx(COUNTED - 5.0)
    assert [poster.wait_needed(), poster.wait_needed()] == [0.0, 0.0]
    assert poster.wait_needed() > 0  # the whole minute is spent now
    assert poller.held_back == 2 and poster.held_back == 1


def test_the_server_reporting_fewer_calls_left_lowers_the_shared_budget(
    db: Database, other_worker: Database, clock: Clock
) -> None:
    first = _budget(db, clock, per_minute=10, background_reserve=0)
    second = _budget(other_worker, clock, per_minute=10, background_reserve=0)
    assert first.wait_needed() == 0.0

    # We count 1 of 10 used; Xero counts 8 (another app shares the tenant).
    first.server_remaining(2)

    assert [second.wait_needed() for _ in range(3)] == [0.0, 0.0, COUNTED]
    assert second.calls_in_window() == 10


def test_the_server_reporting_more_calls_left_than_we_counted_changes_nothing(
    db: Database, clock: Clock
) -> None:
    budget = _budget(db, clock, per_minute=10, background_reserve=0)
    for _ in range(4):
        assert budget.wait_needed() == 0.0

    budget.server_remaining(9)  # Xero has not seen our latest calls yet: our own count stands

    assert budget.calls_in_window() == 4


def test_a_server_without_a_minute_limit_is_not_paced_and_no_row_is_written(
    db: Database, clock: Clock
) -> None:
    budget = _budget(db, clock, per_minute=2, background_reserve=0)
    budget.server_reports_limit(False)

    assert [budget.wait_needed(background=True) for _ in range(5)] == [0.0] * 5
    assert budget.calls_in_window() == 0

    budget.server_reports_limit(True)
    assert [budget.wait_needed(), budget.wait_needed(), budget.wait_needed()] == [0.0, 0.0, COUNTED]


def test_a_disarmed_budget_still_honours_a_retry_after(db: Database, clock: Clock) -> None:
    budget = _budget(db, clock)
    budget.server_reports_limit(False)
    budget.refused(3.0)
    assert budget.wait_needed() == pytest.approx(3.0)


@pytest.mark.parametrize(("per_minute", "reserve"), [(0, 0), (6, 6), (6, -1)])
def test_a_budget_that_could_never_serve_background_work_is_refused(
    db: Database, clock: Clock, per_minute: int, reserve: int
) -> None:
    with pytest.raises(ValueError):
        _budget(db, clock, per_minute=per_minute, background_reserve=reserve)
