"""ASGI layers around the Kantata API: call statistics, rate limits, `.json` paths, dropped replies."""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

from sandboxes.faults import ASGIApp, Message, Receive, Scope, Send
from sandboxes.kantata.errors import rate_limited_body
from sandboxes.oauth import bearer

API_PREFIX = "/api/v1"


@dataclass
class CallStats:
    calls: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    dropped_responses: int = 0
    token_requests: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "calls": self.calls,
            "by_status": dict(self.by_status),
            "rate_limited": self.rate_limited,
            "dropped_responses": self.dropped_responses,
            "token_requests": self.token_requests,
        }


class StatsMiddleware:
    """Counts API calls by final status, whoever produced it (the API, a limit, or an injected fault)."""

    def __init__(self, app: ASGIApp, stats: CallStats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith(API_PREFIX) or path.startswith("/oauth")):
            await self.app(scope, receive, send)
            return
        if path.startswith("/oauth"):
            self.stats.token_requests += 1
        else:
            self.stats.calls += 1

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start" and path.startswith(API_PREFIX):
                status = int(message["status"])
                self.stats.by_status[str(status)] += 1
                if status == 429:
                    self.stats.rate_limited += 1
            await send(message)

        await self.app(scope, receive, counting_send)


class JsonSuffixMiddleware:
    """Kantata serves `/api/v1/workspaces.json` and `/api/v1/workspaces` alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(API_PREFIX) and path.endswith(".json"):
            scope = dict(scope, path=path[: -len(".json")], raw_path=path[: -len(".json")].encode())
        await self.app(scope, receive, send)


@dataclass
class RateLimits:
    """Requests per rolling minute per access token; None switches a limit off (the default)."""

    general_per_minute: int | None = None
    # Kantata limits these endpoints separately from the general limit (Rate Limits section of the docs).
    endpoint_per_minute: int | None = None
    _windows: dict[tuple[str, str], deque[float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

    def allow(self, bucket: tuple[str, str], limit: int) -> bool:
        now = time.monotonic()
        with self._lock:
            window = self._windows.setdefault(bucket, deque())
            while window and window[0] <= now - 60:
                window.popleft()
            if len(window) >= limit:
                return False
            window.append(now)
            return True


_LIMITED_ENDPOINTS = {
    ("POST", "/api/v1/workspaces"),
    ("GET", "/api/v1/workspaces"),
    ("POST", "/api/v1/account_invitations"),
    ("POST", "/api/v1/custom_field_values"),
    ("GET", "/api/v1/custom_field_values"),
}


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limits: RateLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = {key.decode().lower(): value.decode() for key, value in scope.get("headers", [])}
        who = bearer(headers.get("authorization")) or scope.get("client", ("?",))[0]
        endpoint = (scope["method"], path)
        checks = [(("all", who), self.limits.general_per_minute)]
        if endpoint in _LIMITED_ENDPOINTS:
            checks.append(((f"{endpoint[0]} {endpoint[1]}", who), self.limits.endpoint_per_minute))
        for bucket, limit in checks:
            if limit is not None and not self.limits.allow(bucket, limit):
                body = rate_limited_body()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 429,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


@dataclass
class DropRule:
    method: str
    path: str
    remaining: int


@dataclass
class DropRules:
    rules: list[DropRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: DropRule) -> None:
        with self._lock:
            self.rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()

    def claim(self, method: str, path: str) -> bool:
        with self._lock:
            for rule in self.rules:
                if rule.remaining > 0 and rule.method == method and rule.path == path:
                    rule.remaining -= 1
                    return True
        return False


class ResponseDropMiddleware:
    """Lets the API do its work, then cuts the connection before the reply arrives.

    The shared FaultMiddleware drops a call before the API sees it; this is the other, nastier half: the
    record exists but the client never learns it. A retried create must then find it instead of duplicating.
    """

    def __init__(self, app: ASGIApp, stats: CallStats, rules: DropRules) -> None:
        self.app = app
        self.stats = stats
        self.rules = rules

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.rules.claim(scope["method"], scope.get("path", "")):
            await self.app(scope, receive, send)
            return

        async def swallow(message: Message) -> None:
            return None

        await self.app(scope, receive, swallow)
        self.stats.dropped_responses += 1
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"count":', "more_body": True})
        raise ConnectionResetError("sandbox fault: reply dropped after the request was processed")
