"""Fault injection shared by every sandbox: deterministic by seed, configurable per run.

The same FaultConfig drives the reliability tests and the benchmark, so a failure seen once can be
replayed exactly: faults are drawn from one seeded generator in request order.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")


class FaultConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    seed: int = 0
    latency_ms: int = Field(default=0, ge=0, description="added to every API call")
    latency_jitter_ms: int = Field(default=0, ge=0)
    server_error_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls answered 5xx")
    rate_limit_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls answered 429")
    timeout_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of calls that hang past the timeout"
    )
    timeout_seconds: float = Field(default=35.0, ge=0)
    drop_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of calls whose connection is cut mid-reply"
    )
    duplicate_event_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of events delivered twice"
    )
    reorder_events: bool = False
    # Only paths starting with one of these prefixes get faults (token and control paths never do).
    path_prefixes: tuple[str, ...] = ()

    @property
    def active(self) -> bool:
        return any(
            (
                self.latency_ms,
                self.latency_jitter_ms,
                self.server_error_rate,
                self.rate_limit_rate,
                self.timeout_rate,
                self.drop_rate,
            )
        )


class FaultPlan:
    """The live fault state of one sandbox: its config, its generator, and what it injected."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
            self.injected.clear()

    def draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def choose_call_fault(self) -> tuple[str | None, float]:
        """One decision per API call: which fault (if any) and how much latency to add."""
        config = self.config
        with self._lock:
            roll = self._rng.random()
            jitter = self._rng.random() * config.latency_jitter_ms if config.latency_jitter_ms else 0.0
        delay = (config.latency_ms + jitter) / 1000.0
        for name, rate in (
            ("server_error", config.server_error_rate),
            ("rate_limited", config.rate_limit_rate),
            ("timeout", config.timeout_rate),
            ("dropped", config.drop_rate),
        ):
            if roll < rate:
                self.injected[name] += 1
                return name, delay
            roll -= rate
        return None, delay

    def deliveries(self, events: Sequence[T]) -> list[T]:
        """Events as a flaky sender would deliver them: maybe duplicated, maybe reordered."""
        out: list[T] = []
        for event in events:
            out.append(event)
            if self.config.duplicate_event_rate and self.draw() < self.config.duplicate_event_rate:
                self.injected["duplicate_event"] += 1
                out.append(event)
        if self.config.reorder_events and len(out) > 1:
            with self._lock:
                self._rng.shuffle(out)
            self.injected["reordered_batch"] += 1
        return out


ResponseFactory = Callable[[Scope], tuple[int, list[tuple[bytes, bytes]], bytes]]


class FaultMiddleware:
    """ASGI middleware applying a FaultPlan to API calls.

    `rate_limited` and `server_error` build the vendor's own reply (status, headers, body), so a
    connector under test sees exactly what the real API would send.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        plan: FaultPlan,
        rate_limited: ResponseFactory,
        server_error: ResponseFactory,
        exempt_prefixes: tuple[str, ...] = ("/_sandbox",),
    ) -> None:
        self.app = app
        self.plan = plan
        self.rate_limited = rate_limited
        self.server_error = server_error
        self.exempt_prefixes = exempt_prefixes

    def _applies(self, path: str) -> bool:
        if any(path.startswith(prefix) for prefix in self.exempt_prefixes):
            return False
        prefixes = self.plan.config.path_prefixes
        return not prefixes or any(path.startswith(prefix) for prefix in prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies(scope["path"]):
            await self.app(scope, receive, send)
            return
        fault, delay = self.plan.choose_call_fault()
        if delay:
            await asyncio.sleep(delay)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "timeout":
            await asyncio.sleep(self.plan.config.timeout_seconds)
            await _reply(send, 504, [(b"content-type", b"text/plain")], b"gateway timeout")
        elif fault == "dropped":
            # Promise a body and cut the connection halfway: the client sees a broken reply.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
            raise ConnectionResetError("sandbox fault: connection dropped")
        else:
            factory = self.rate_limited if fault == "rate_limited" else self.server_error
            status, headers, body = factory(scope)
            await _reply(send, status, headers, body)


async def _reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
