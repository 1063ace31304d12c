"""The in-process budget keeps part of each minute for foreground calls, and activities mark background
work with a context variable that every call they await sees."""

from __future__ import annotations

import asyncio

import pytest

from connectors.call_budget import background_calls, in_background
from connectors.xero.pacing import MinutePacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_background_calls_leave_the_reserve_to_foreground_calls() -> None:
    clock = Clock()
    pacer = MinutePacer(60, clock=clock)  # a third kept: background stops with 20 left

    background = [pacer.wait_needed(background=True) for _ in range(41)]

    assert background[:40] == [0.0] * 40 and background[40] == 60.0
    assert [pacer.wait_needed() for _ in range(20)] == [0.0] * 20
    assert pacer.wait_needed() == 60.0
    assert pacer.held_back == 2


def test_background_may_call_again_as_soon_as_one_call_leaves_the_minute() -> None:
    clock = Clock()
    pacer = MinutePacer(6, background_reserve=2, clock=clock)
    for _ in range(4):
        assert pacer.wait_needed(background=True) == 0.0
        clock.now += 10.0
    # Calls at 1000, 1010, 1020, 1030; now 1040: the one at 1000 leaves the minute at 1060.
    assert pacer.wait_needed(background=True) == 20.0
    clock.now += 20.0
    assert pacer.wait_needed(background=True) == 0.0


def test_the_in_process_count_believes_the_server_only_when_asked() -> None:
    clock = Clock()
    trusting = MinutePacer(10, background_reserve=0, follow_server_count=True, clock=clock)
    own_count = MinutePacer(10, background_reserve=0, clock=clock)
    for pacer in (trusting, own_count):
        assert pacer.wait_needed() == 0.0
        pacer.server_remaining(2)  # Xero counts 8 used of 10; we made 1

    assert [trusting.wait_needed() for _ in range(3)] == [0.0, 0.0, 60.0]
    assert [own_count.wait_needed() for _ in range(9)] == [0.0] * 9


def test_a_reserve_as_large_as_the_minute_is_refused() -> None:
    with pytest.raises(ValueError, match="background reserve"):
        MinutePacer(3, background_reserve=3)


async def test_the_background_mark_reaches_every_call_an_activity_awaits_and_no_other() -> None:
    seen: dict[str, bool] = {}

    async def call(name: str) -> None:
        await asyncio.sleep(0)
        seen[name] = in_background()

    async def poll() -> None:
        with background_calls():
            await call("poll")
            await asyncio.gather(call("poll-pages"))
        await call("after-poll")

    await asyncio.gather(poll(), call("post"))

    assert seen == {"poll": True, "poll-pages": True, "after-poll": False, "post": False}
    assert not in_background()
