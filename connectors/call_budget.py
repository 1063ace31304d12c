"""A vendor's per-tenant call budget, and which calls may spend all of it.

Some vendors limit calls per tenant and minute, whoever makes them (Xero: 60 a minute). Several workers
share one tenant, so the budget is shared too: the worker hands a connector `CallBudgets` that keep the
count in the ledger, where every worker of the deployment sees it. Without them a connector keeps its own
count in memory (tests and tools that have no ledger), which is right only for a single process.

Not every call is as urgent. Posting an invoice or creating the customer of a new deal is what the firm
waits for; a status poll that waits a minute loses nothing. Activities doing background work wrap their
calls in `background_calls()`, and background calls stop while fewer than the reserve remain of the minute,
so foreground calls always find some budget. The mark travels in a context variable, not in every
connector method's arguments: an activity runs in its own asyncio task, and everything it awaits sees it.

A call the budget holds back is normally waited out only briefly and otherwise fails its attempt, so that
Temporal retries it later and the worker's slot is freed. An activity that has already spent calls on the
way to the one held (a look-up before a create) would spend them again on the retry; it marks its calls
`patient_calls()` and waits for the budget inside the attempt, heartbeating, instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol, runtime_checkable

_background: ContextVar[bool] = ContextVar("background_calls", default=False)
_patience: ContextVar[float] = ContextVar("call_patience", default=0.0)


@contextmanager
def background_calls() -> Iterator[None]:
    """Calls made inside are background work: they leave the budget's reserve to foreground calls."""
    token = _background.set(True)
    try:
        yield
    finally:
        _background.reset(token)


def in_background() -> bool:
    return _background.get()


@contextmanager
def patient_calls(seconds: float) -> Iterator[None]:
    """Calls made inside wait up to `seconds` for the budget rather than fail the attempt: only for an
    activity that heartbeats, and whose start-to-close timeout leaves room for the wait."""
    if seconds < 0:
        raise ValueError("patience must not be negative")
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)


def patience() -> float:
    """How long a held call may wait inside its attempt beyond the connector's own allowance."""
    return _patience.get()


class CallBudget(Protocol):
    """One tenant's calls per rolling minute. Methods may block briefly on I/O: call them off the event loop.

    The server is believed over our own count: it may refuse for longer (Retry-After) or report fewer calls
    left (other apps share the tenant) than we counted, and a server that reports no limit is not paced.
    """

    def wait_needed(self, *, background: bool = False) -> float:
        """0 when a call may go now (and it is counted); else the seconds until a call of this kind may."""
        ...

    def refused(self, retry_after: float | None) -> None:
        """The server refused a call: nobody sharing the tenant calls before `retry_after` has passed."""
        ...

    def server_remaining(self, remaining: int) -> None:
        """The server says this many calls remain in its minute: what it counts beyond us counts as used."""
        ...

    def server_reports_limit(self, reported: bool) -> None:
        """Whether the last answer carried a minute limit: only a limited server is paced."""
        ...


class CallBudgets(Protocol):
    """Where a connector gets the budget of a tenant it calls: one per (vendor, tenant) for everyone."""

    def budget(self, *, vendor: str, tenant: str, per_minute: int, background_reserve: int) -> CallBudget: ...


@runtime_checkable
class SharesCallBudget(Protocol):
    """A connector whose vendor limits calls per tenant: it takes the deployment's shared budgets."""

    def share_call_budgets(self, budgets: CallBudgets) -> None: ...
