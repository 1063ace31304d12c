"""The rolling-minute rule of a per-tenant call budget: who may call now, and how long the others wait.

Pure functions over the times of the calls made in the last minute, so the in-process budget and the one
the workers share through the ledger decide alike. Foreground calls (posting, new deals) may spend the whole
minute; background calls (polling, reference reads) stop while only the reserve is left.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

# Vendors that limit calls "per minute" (Xero) count a rolling minute.
WINDOW_SECONDS = 60.0


def default_reserve(per_minute: int) -> int:
    """A third of the minute kept for foreground calls: 20 of Xero's 60."""
    return per_minute // 3


def check_limits(per_minute: int, background_reserve: int) -> None:
    if per_minute < 1:
        raise ValueError("per_minute must be at least 1")
    if not 0 <= background_reserve < per_minute:
        raise ValueError(
            f"the background reserve ({background_reserve}) must be at least 0 and below the minute's "
            f"{per_minute} calls, or background work could never call"
        )


def within_window(calls: Iterable[float], now: float, window: float = WINDOW_SECONDS) -> list[float]:
    """The calls still inside the window that ends now, oldest first."""
    return sorted(moment for moment in calls if moment > now - window)


def wait_before_call(
    calls: Sequence[float],
    *,
    now: float,
    per_minute: int,
    background_reserve: int,
    background: bool,
    blocked_until: float = 0.0,
    window: float = WINDOW_SECONDS,
) -> float:
    """0 when a call may go now; else the seconds until one of its kind may. `calls` as `within_window`."""
    if now < blocked_until:
        return blocked_until - now
    allowed = per_minute - background_reserve if background else per_minute
    if len(calls) < allowed:
        return 0.0
    # It may go once all but `allowed - 1` of the calls in the window have left it.
    return calls[len(calls) - allowed] + window - now


def with_server_count(calls: Sequence[float], *, now: float, per_minute: int, remaining: int) -> list[float]:
    """`calls` with whatever the server counts beyond them (other apps calling the same tenant) added.

    The server does not say when those calls were made; they count as made now, the latest they can have
    been, so none is released before the server releases it.
    """
    missing = (per_minute - remaining) - len(calls)
    return [*calls, *([now] * missing)] if missing > 0 else list(calls)
