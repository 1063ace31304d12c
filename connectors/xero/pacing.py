"""Keep calls inside Xero's per-tenant minute limit before Xero has to refuse them.

Xero allows 60 calls a minute per tenant and answers 429 with Retry-After past it. Many activities
retrying together would each collect that 429 (a "429 storm"). So the client counts its calls over the
last minute and remembers any Retry-After, and instead of sending a call Xero would refuse, it waits (when
the wait is short) or raises RateLimited with the wait: the activity retries after exactly that delay, and
Xero sees no extra call.

The count is a `CallBudget` (connectors.call_budget). `MinutePacer` here is the in-process one, the default
for tests and tools; a worker shares the deployment's budget kept in the ledger instead, because the limit
is per tenant, not per process. Both keep part of the minute for foreground calls (`background_calls()`).

Pacing follows what the server says about itself: Xero puts X-MinLimit-Remaining on every answer, and it
never exceeds Xero's per-tenant minute limit. A server that sends no such header, or reports more calls
left this minute than Xero ever allows (a stand-in configured without Xero's limits, as a benchmark's
baseline world is), has no minute limit to keep under, so the pacer stands down until a header within
Xero's limit is seen again. It starts armed, as Xero is limited until shown not.

A server reporting fewer calls left than we counted (other apps share the tenant) is believed by the shared
budget. The in-process count believes only itself unless asked to (`follow_server_count`): a test session or
a tool shares one sandbox tenant among many short-lived clients, and the sandbox counts all their calls
against Xero's numbers without enforcing them, so taking its word would hold back calls nobody refuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from domain.call_window import (
    WINDOW_SECONDS,
    check_limits,
    default_reserve,
    wait_before_call,
    with_server_count,
    within_window,
)

# Xero's per-tenant minute limit (developer.xero.com/documentation/guides/oauth2/limits).
XERO_MINUTE_LIMIT = 60


class MinutePacer:
    """One process's count of a tenant's calls in the rolling minute (a `CallBudget`)."""

    def __init__(
        self,
        per_minute: int,
        *,
        background_reserve: int | None = None,
        follow_server_count: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        reserve = default_reserve(per_minute) if background_reserve is None else background_reserve
        check_limits(per_minute, reserve)
        self.per_minute = per_minute
        self.background_reserve = reserve
        self.follow_server_count = follow_server_count
        self._clock = clock
        self._sent: list[float] = []
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.held_back = 0
        self.armed = True

    def server_reports_limit(self, reported: bool) -> None:
        self.armed = reported

    def wait_needed(self, *, background: bool = False) -> float:
        with self._lock:
            now = self._clock()
            self._sent = within_window(self._sent, now)
            wait = (
                wait_before_call(
                    self._sent,
                    now=now,
                    per_minute=self.per_minute,
                    background_reserve=self.background_reserve,
                    background=background,
                    blocked_until=self._blocked_until,
                )
                if self.armed
                else max(0.0, self._blocked_until - now)
            )
            if wait > 0:
                self.held_back += 1
                return wait
            self._sent.append(now)
            return 0.0

    def refused(self, retry_after: float | None) -> None:
        with self._lock:
            wait = retry_after if retry_after is not None else WINDOW_SECONDS
            self._blocked_until = max(self._blocked_until, self._clock() + wait)

    def server_remaining(self, remaining: int) -> None:
        if not self.follow_server_count:
            return
        with self._lock:
            now = self._clock()
            self._sent = with_server_count(
                within_window(self._sent, now), now=now, per_minute=self.per_minute, remaining=remaining
            )
