"""Concurrency governance and request limits, in front of the account's web services.

Every request to REST web services counts towards the account's concurrency limit while it runs; the one
that would go beyond it is refused at once with 429 CONCURRENCY_LIMIT_EXCEEDED (nothing is queued). The
token endpoint is not counted. A per-minute request limit, when configured, refuses with 429
REQUEST_LIMIT_EXCEEDED and a Retry-After.

It wraps the fault middleware, so injected latency holds a slot exactly as a slow NetSuite would.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from typing import Any

from sandboxes.faults import reply
from sandboxes.netsuite import replies
from sandboxes.netsuite.config import GovernanceConfig

GOVERNED_PREFIX = "/services/rest/"
EXEMPT_PREFIX = "/services/rest/auth/"


class Governance:
    def __init__(self, config: GovernanceConfig) -> None:
        self.config = config
        self.in_flight = 0
        self.max_in_flight = 0
        self.refused: Counter[str] = Counter()
        self._recent: deque[float] = deque()

    def configure(self, config: GovernanceConfig) -> None:
        self.config = config
        self._recent.clear()

    def reset(self) -> None:
        self.refused.clear()
        self.max_in_flight = 0
        self._recent.clear()

    def refusal(self) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """Admit one request (None) or say why not. Runs on the event loop: no lock is needed."""
        if self.in_flight >= self.config.concurrency_limit:
            self.refused["CONCURRENCY_LIMIT_EXCEEDED"] += 1
            return replies.concurrency_refused_parts()
        per_minute = self.config.requests_per_minute
        if per_minute is not None:
            now = time.monotonic()
            while self._recent and now - self._recent[0] >= 60:
                self._recent.popleft()
            if len(self._recent) >= per_minute:
                self.refused["REQUEST_LIMIT_EXCEEDED"] += 1
                return replies.request_limit_parts(max(1, int(60 - (now - self._recent[0])) + 1))
            self._recent.append(now)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        return None

    def release(self) -> None:
        self.in_flight -= 1


class GovernanceMiddleware:
    def __init__(self, app: Any, *, governance: Governance) -> None:
        self.app = app
        self.governance = governance

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(GOVERNED_PREFIX) or path.startswith(EXEMPT_PREFIX):
            await self.app(scope, receive, send)
            return
        refused = self.governance.refusal()
        if refused is not None:
            await reply(send, *refused)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.governance.release()
