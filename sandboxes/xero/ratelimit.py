"""Xero's API limits per tenant: 5 calls in progress, 60 per rolling minute, 5,000 per rolling day, and
10,000 per minute for the whole app (developer.xero.com/documentation/guides/oauth2/limits).

Every accounting response carries X-MinLimit-Remaining, X-DayLimit-Remaining and X-AppMinLimit-Remaining,
as Xero's always do; a call over a limit gets 429 with Retry-After and X-Rate-Limit-Problem naming the
limit. With enforcement switched off nothing is refused, but the counts are kept and the headers still sent
against the configured numbers: a client pacing itself by those headers behaves as it would against Xero,
which has no tenant without limits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass

from sandboxes.faults import ASGIApp as App
from sandboxes.faults import Message, Receive, Scope, Send
from sandboxes.xero.config import RateLimitConfig
from sandboxes.xero.replies import rate_limited_parts

MINUTE = 60.0
DAY = 86_400.0


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: list[tuple[bytes, bytes]]
    problem: str | None = None
    retry_after: int = 0


class RateLimiter:
    def __init__(self, config: RateLimitConfig) -> None:
        self._lock = threading.Lock()
        self.config = config
        self.reset()

    def configure(self, config: RateLimitConfig) -> None:
        """New limits start from clean windows, so a run measures only its own calls."""
        self.reset()
        with self._lock:
            self.config = config

    def reset(self) -> None:
        with self._lock:
            self._in_flight: Counter[str] = Counter()
            self._minute: defaultdict[str, deque[float]] = defaultdict(deque)
            self._day: defaultdict[str, deque[float]] = defaultdict(deque)
            self._app_minute: deque[float] = deque()
            self.refused: Counter[str] = Counter()
            self.max_in_flight: Counter[str] = Counter()

    @staticmethod
    def _trim(window: deque[float], span: float, now: float) -> None:
        while window and window[0] <= now - span:
            window.popleft()

    def acquire(self, tenant: str) -> Decision:
        now = time.monotonic()
        with self._lock:
            config = self.config
            minute, day, app = self._minute[tenant], self._day[tenant], self._app_minute
            self._trim(minute, MINUTE, now)
            self._trim(day, DAY, now)
            self._trim(app, MINUTE, now)
            problem, retry_after = None, 0
            if config.enabled:
                if self._in_flight[tenant] >= config.concurrent:
                    problem, retry_after = "concurrent", 1
                elif len(day) >= config.per_day:
                    problem, retry_after = "day", math.ceil(day[0] + DAY - now)
                elif len(minute) >= config.per_minute:
                    problem, retry_after = "minute", math.ceil(minute[0] + MINUTE - now)
                elif len(app) >= config.app_per_minute:
                    problem, retry_after = "appminute", math.ceil(app[0] + MINUTE - now)
            if problem is None:
                minute.append(now)
                day.append(now)
                app.append(now)
                self._in_flight[tenant] += 1
                self.max_in_flight[tenant] = max(self.max_in_flight[tenant], self._in_flight[tenant])
            else:
                self.refused[problem] += 1
            headers = [
                (b"x-minlimit-remaining", str(max(0, config.per_minute - len(minute))).encode()),
                (b"x-daylimit-remaining", str(max(0, config.per_day - len(day))).encode()),
                (b"x-appminlimit-remaining", str(max(0, config.app_per_minute - len(app))).encode()),
            ]
        return Decision(
            allowed=problem is None, headers=headers, problem=problem, retry_after=max(1, retry_after)
        )

    def release(self, tenant: str) -> None:
        with self._lock:
            self._in_flight[tenant] = max(0, self._in_flight[tenant] - 1)


class RateLimitMiddleware:
    """Counts and limits accounting API calls per `xero-tenant-id`."""

    def __init__(self, app: App, *, limiter: RateLimiter, prefix: str = "/api.xro/2.0") -> None:
        self.app = app
        self.limiter = limiter
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        tenant = next((value.decode() for name, value in scope["headers"] if name == b"xero-tenant-id"), None)
        if tenant is None:
            await self.app(scope, receive, send)  # the API answers 403 for a missing tenant
            return
        decision = self.limiter.acquire(tenant)
        if not decision.allowed:
            assert decision.problem is not None
            status, headers, body = rate_limited_parts(decision.problem, decision.retry_after)
            await send(
                {
                    "type": "http.response.start",
                    "status": status,
                    "headers": [*headers, *decision.headers, (b"content-length", str(len(body)).encode())],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        released = False

        async def send_with_limits(message: Message) -> None:
            nonlocal released
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *decision.headers]
            elif message["type"] == "http.response.body" and not message.get("more_body") and not released:
                # Free the slot before the last bytes leave: a client with its answer may call again at once.
                released = True
                self.limiter.release(tenant)
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            if not released:
                self.limiter.release(tenant)
