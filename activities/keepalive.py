"""Heartbeat while an activity waits on something slow it cannot report progress from.

A posting may queue behind the ERP's own limit (Tryton takes two at a time) for longer than any single
call should take. Beating the heart while it waits lets the activity have a long start-to-close timeout
and still be given up on within the heartbeat timeout if the worker holding it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

BEAT_SECONDS = 10.0


@contextlib.asynccontextmanager
async def heartbeating(every: float = BEAT_SECONDS) -> AsyncIterator[None]:
    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(every)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
