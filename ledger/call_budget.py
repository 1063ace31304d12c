"""The call budget every worker of a deployment shares: one ledger row per vendor tenant.

A vendor that limits calls per tenant (Xero: 60 a rolling minute) counts every caller's calls together,
so the workers have to as well. Each decision is one short write transaction: it reads the tenant's row
under a lock (SELECT ... FOR UPDATE on PostgreSQL; on SQLite every write transaction is serialised from its
BEGIN IMMEDIATE), applies the rolling-minute rule of `domain.call_window` and writes the row back, so two
workers can never both take the last call of a minute. The row also holds the vendor's latest Retry-After,
which then holds every worker back, not only the one that was refused.

Times are epoch seconds from the wall clock: the one clock the workers' hosts share (kept in step by NTP;
a skew of a few milliseconds is nothing against a minute).

These classes are the ledger's side of the connectors' `CallBudgets` and `CallBudget` protocols; the ledger
does not import connectors, so they match them by shape, and the worker hands them over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from domain.call_window import (
    WINDOW_SECONDS,
    check_limits,
    wait_before_call,
    with_server_count,
    within_window,
)
from ledger import checks
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.races import insert_unless_present
from ledger.tables import CallBudgetRow

T = TypeVar("T")

# A call counts for a minute and a second. The budget records a call when it grants it, the vendor when the
# request arrives, a moment later; releasing it after exactly a minute could hand its place to a call that
# arrives while the vendor still counts the old one (the governed benchmark drew one 429 in 81 calls so).
ARRIVAL_MARGIN_SECONDS = 1.0


class LedgerCallBudgets:
    """Budgets kept in the ledger, one per vendor tenant, the same for every worker on this database."""

    def __init__(self, database: Database, *, clock: Callable[[], float] = time.time) -> None:
        self._db = database
        self._clock = clock

    def budget(
        self, *, vendor: str, tenant: str, per_minute: int, background_reserve: int
    ) -> LedgerCallBudget:
        return LedgerCallBudget(
            self._db,
            vendor=vendor,
            tenant=tenant,
            per_minute=per_minute,
            background_reserve=background_reserve,
            clock=self._clock,
        )


class LedgerCallBudget:
    """One vendor tenant's rolling minute, shared through the ledger. Its methods block on the database."""

    def __init__(
        self,
        database: Database,
        *,
        vendor: str,
        tenant: str,
        per_minute: int,
        background_reserve: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_limits(per_minute, background_reserve)
        self._db = database
        self.vendor = checks.system_name("vendor", vendor)
        self.tenant = checks.key("tenant", tenant)
        self.per_minute = per_minute
        self.background_reserve = background_reserve
        self.window = WINDOW_SECONDS + ARRIVAL_MARGIN_SECONDS
        self._clock = clock
        self.armed = True
        self.held_back = 0
        # What this process last saw: the calls left after its latest decision (to skip writes that would
        # change nothing) and the latest Retry-After (all a disarmed budget still honours).
        self._remaining: int | None = None
        self._blocked_until = 0.0

    def server_reports_limit(self, reported: bool) -> None:
        # Kept per process: a server without limits is seen by every worker on its next answer, and a
        # disarmed budget then touches no row at all (the benchmark's baseline world pays nothing for it).
        self.armed = reported

    def wait_needed(self, *, background: bool = False) -> float:
        if not self.armed:
            return max(0.0, self._blocked_until - self._clock())

        def decide(row: CallBudgetRow, now: float) -> float:
            calls = within_window(row.calls, now, self.window)
            wait = wait_before_call(
                calls,
                now=now,
                per_minute=self.per_minute,
                background_reserve=self.background_reserve,
                background=background,
                blocked_until=row.blocked_until,
                window=self.window,
            )
            if wait <= 0:
                calls.append(now)
            row.calls = sorted(calls)
            self._remaining = self.per_minute - len(calls)
            self._blocked_until = row.blocked_until
            return wait

        wait = self._with_row(decide)
        if wait > 0:
            self.held_back += 1
            return wait
        return 0.0

    def refused(self, retry_after: float | None) -> None:
        wait = retry_after if retry_after is not None else WINDOW_SECONDS

        def block(row: CallBudgetRow, now: float) -> None:
            row.blocked_until = max(row.blocked_until, now + wait)
            self._blocked_until = row.blocked_until

        self._with_row(block)

    def server_remaining(self, remaining: int) -> None:
        if self._remaining is not None and remaining >= self._remaining:
            return  # the server counts no more than we last did: the row would not change

        def adopt(row: CallBudgetRow, now: float) -> None:
            calls = with_server_count(
                within_window(row.calls, now, self.window),
                now=now,
                per_minute=self.per_minute,
                remaining=remaining,
            )
            row.calls = calls
            self._remaining = self.per_minute - len(calls)

        self._with_row(adopt)

    def calls_in_window(self) -> int:
        """How many calls the shared count holds for the rolling minute that ends now."""
        with self._db.session(read_only=True) as session:
            row = session.execute(self._select()).scalar_one_or_none()
            return 0 if row is None else len(within_window(row.calls, self._clock(), self.window))

    def _select(self) -> Select[CallBudgetRow]:
        return select(CallBudgetRow).where(
            CallBudgetRow.vendor == self.vendor, CallBudgetRow.tenant == self.tenant
        )

    def _with_row(self, change: Callable[[CallBudgetRow, float], T]) -> T:
        """`change` applied to the tenant's row, locked against every other worker until it is written."""
        with self._db.session() as session:
            row = self._locked_row(session)
            # Read after the lock: the time a decision is made at is the time it is recorded at.
            result = change(row, self._clock())
            row.updated_at = utc_now()
        return result

    def _locked_row(self, session: Session) -> CallBudgetRow:
        locked = self._select().with_for_update()
        row, _ = insert_unless_present(
            session,
            find=lambda: session.execute(locked).scalar_one_or_none(),
            build=lambda: CallBudgetRow(
                vendor=self.vendor, tenant=self.tenant, calls=[], blocked_until=0.0, updated_at=utc_now()
            ),
        )
        return row
