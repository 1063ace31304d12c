"""Keep one process's calls inside Xero's per-tenant minute limit before Xero has to refuse them.

Xero allows 60 calls a minute per tenant and answers 429 with Retry-After past it. Many activities
retrying together would each collect that 429 (a "429 storm"). So the client counts its own calls over the
last minute and remembers any Retry-After, and instead of sending a call Xero would refuse, it raises
RateLimited with the wait at once: the activity retries after exactly that delay, and Xero sees no extra
call. The count is per process; several workers sharing a tenant should split the budget between them.

Pacing follows what the server says about itself: Xero puts X-MinLimit-Remaining on every answer, and it
never exceeds Xero's per-tenant minute limit. A server that sends no such header, or reports more calls
left this minute than Xero ever allows (a stand-in configured without Xero's limits, as a benchmark's
baseline world is), has no minute limit to keep under, so the pacer stands down until a header within
Xero's limit is seen again. It starts armed, as Xero is limited until shown not.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
# Xero's per-tenant minute limit (developer.xero.com/documentation/guides/oauth2/limits).
XERO_MINUTE_LIMIT = 60


class MinutePacer:
    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self._clock = clock
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = threading.Lock()
        self.held_back = 0
        self.armed = True

    def server_reports_limit(self, reported: bool) -> None:
        """Whether the last answer carried a minute-limit header: only a limited server is paced."""
        self.armed = reported

    def wait_needed(self) -> float:
        """0 when a call may go now (and it is counted); else the seconds until one may."""
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                self.held_back += 1
                return self._blocked_until - now
            while self._sent and self._sent[0] <= now - WINDOW_SECONDS:
                self._sent.popleft()
            if self.armed and len(self._sent) >= self.per_minute:
                self.held_back += 1
                return self._sent[0] + WINDOW_SECONDS - now
            self._sent.append(now)
            return 0.0

    def refused(self, retry_after: float | None) -> None:
        """Xero said wait: nobody in this process calls again before then."""
        with self._lock:
            wait = retry_after if retry_after is not None else WINDOW_SECONDS
            self._blocked_until = max(self._blocked_until, self._clock() + wait)
