"""Fault injection shared by every sandbox: deterministic by seed, configurable per run.

The same FaultConfig drives the reliability tests, the benchmark and the chaos run, so a failure seen once
can be replayed exactly: faults are drawn from one seeded generator in request order.

Two ways a connection breaks, because they ask different things of a client:
- `dropped`: the connection is cut before the sandbox runs the request, so nothing happened;
- `reply_lost`: the sandbox runs the request (the invoice is created) and the connection is cut before the
  reply arrives, so the client cannot tell whether it happened. Idempotency keys exist for this one.
"""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
T = TypeVar("T")

CallFault = Literal["server_error", "rate_limited", "timeout", "dropped", "reply_lost"]
# Methods that change something: only these can have a reply lost after the change was made.
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
        default=0.0,
        ge=0,
        le=1,
        description="share of calls whose connection is cut before the sandbox runs them",
    )
    reply_lost_rate: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="share of writes the sandbox runs and then cuts the connection before the reply",
    )
    duplicate_event_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of events delivered twice"
    )
    reorder_events: bool = False
    # Only paths starting with one of these prefixes get faults (token and control paths never do).
    path_prefixes: tuple[str, ...] = ()
    # Only callers whose User-Agent starts with one of these get faults: a run can aim at the system under
    # test while the people it plays (seeding deals, approving timesheets) use the vendor undisturbed.
    user_agents: tuple[str, ...] = ()
    # Faults for the first eligible calls, in this order, before the rates apply: a short run can count on
    # every kind happening at least once. A `reply_lost` waits for the first write.
    scripted: tuple[CallFault, ...] = ()
    # The Retry-After an injected 429 carries, where the vendor's own 429 carries one (None: the vendor's).
    retry_after_seconds: int | None = Field(default=None, ge=0)
    # Down: every selected call is answered 5xx at once, nothing drawn (an outage of the vendor's API).
    outage: bool = False
    # Carry on from the config before instead of starting afresh: keep the tally of what was injected and,
    # when the seed and script are unchanged, the generator and what is left of the script. A schedule that
    # switches live (random faults, an outage, random faults again) keeps one tally and never replays the
    # opening.
    carry_on: bool = False

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
                self.reply_lost_rate,
                self.scripted,
                self.outage,
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
            previous = getattr(self, "config", None)
            same_draws = (
                config.carry_on
                and previous is not None
                and (previous.seed, previous.scripted) == (config.seed, config.scripted)
            )
            self.config = config
            if not same_draws:
                self._rng = random.Random(config.seed)
                self._script: deque[CallFault] = deque(config.scripted)
            if not config.carry_on:
                self.injected.clear()

    def draw(self) -> float:
        with self._lock:
            return self._rng.random()

    def choose_call_fault(self, *, writes: bool = True) -> tuple[CallFault | None, float]:
        """One decision per API call: which fault (if any) and how much latency to add.

        `writes` says whether the call changes something; a call that does not never has its reply lost
        (that slot of the roll injects nothing), so the same seed draws the same sequence either way.
        """
        config = self.config
        if config.outage:
            self.injected["server_error"] += 1
            return "server_error", 0.0
        with self._lock:
            roll = self._rng.random()
            jitter = self._rng.random() * config.latency_jitter_ms if config.latency_jitter_ms else 0.0
            scripted = self._next_scripted(writes)
        delay = (config.latency_ms + jitter) / 1000.0
        if scripted is not None:
            self.injected[scripted] += 1
            return scripted, delay
        rates: tuple[tuple[CallFault, float], ...] = (
            ("server_error", config.server_error_rate),
            ("rate_limited", config.rate_limit_rate),
            ("timeout", config.timeout_rate),
            ("dropped", config.drop_rate),
            ("reply_lost", config.reply_lost_rate),
        )
        for name, rate in rates:
            if roll < rate:
                if name == "reply_lost" and not writes:
                    return None, delay
                self.injected[name] += 1
                return name, delay
            roll -= rate
        return None, delay

    def _next_scripted(self, writes: bool) -> CallFault | None:
        if not self._script or (self._script[0] == "reply_lost" and not writes):
            return None
        return self._script.popleft()

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


def header(scope: Scope, name: bytes) -> bytes:
    """The first value of a request header (lower-case name), or b"" if it was not sent."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return b""


def caller_selected(config: FaultConfig, scope: Scope) -> bool:
    """Whether the config aims at this caller (every caller unless `user_agents` names some)."""
    if not config.user_agents:
        return True
    agent = header(scope, b"user-agent").decode("latin-1")
    return any(agent.startswith(prefix) for prefix in config.user_agents)


def with_retry_after(headers: list[tuple[bytes, bytes]], seconds: int | None) -> list[tuple[bytes, bytes]]:
    """The vendor's headers with its Retry-After (if it sends one) saying `seconds` instead."""
    if seconds is None:
        return headers
    return [(k, str(seconds).encode() if k.lower() == b"retry-after" else v) for k, v in headers]


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

    def _applies(self, scope: Scope) -> bool:
        path = scope["path"]
        if any(path.startswith(prefix) for prefix in self.exempt_prefixes):
            return False
        config = self.plan.config
        prefixes = config.path_prefixes
        if prefixes and not any(path.startswith(prefix) for prefix in prefixes):
            return False
        return caller_selected(config, scope)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._applies(scope):
            await self.app(scope, receive, send)
            return
        fault, delay = self.plan.choose_call_fault(writes=scope.get("method", "GET") in WRITE_METHODS)
        if delay:
            await asyncio.sleep(delay)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault == "timeout":
            await asyncio.sleep(self.plan.config.timeout_seconds)
            await reply(send, 504, [(b"content-type", b"text/plain")], b"gateway timeout")
        elif fault == "dropped":
            await cut_connection(send, "connection dropped before the request ran")
        elif fault == "reply_lost":
            await self.app(scope, receive, swallow)
            await cut_connection(send, "reply lost after the request ran")
        else:
            factory = self.rate_limited if fault == "rate_limited" else self.server_error
            status, headers, body = factory(scope)
            if fault == "rate_limited":
                headers = with_retry_after(headers, self.plan.config.retry_after_seconds)
            await reply(send, status, headers, body)


async def swallow(message: Message) -> None:
    """A `send` that delivers nothing: the app's reply goes nowhere."""
    return None


async def cut_connection(send: Send, why: str) -> None:
    """Promise a body and cut the connection halfway: the client sees a broken reply, never a status.

    Something must be sent first: an ASGI server answers 500 for an app that raises before replying.
    """
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"partial":', "more_body": True})
    raise ConnectionResetError(f"sandbox fault: {why}")


async def reply(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
