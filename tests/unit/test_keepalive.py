"""An activity queued behind a slow ERP keeps its heartbeat going, and stops beating when done."""

from __future__ import annotations

import asyncio

from temporalio import activity
from temporalio.testing import ActivityEnvironment

from activities.keepalive import heartbeating


@activity.defn
async def waits_behind_a_slow_erp() -> str:
    async with heartbeating(every=0.05):
        await asyncio.sleep(0.3)
    return "posted"


async def test_heartbeats_flow_while_the_call_waits_and_stop_after_it() -> None:
    beats: list[object] = []
    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)

    assert await env.run(waits_behind_a_slow_erp) == "posted"
    during = len(beats)
    await asyncio.sleep(0.2)

    assert during >= 4
    assert len(beats) == during
