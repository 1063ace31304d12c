"""The poll_psa_events activity against the Kantata sandbox when approvals come in bursts.

Found by the benchmark: with more events inside the overlap window than one poll takes, every poll re-read
the same already-seen events, stopped at its limit and never reached the new ones; billing runs were never
started. A poll now counts only unseen events, and a burst the cursor cannot remember raises its floor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.psa import PollPsaEventsInput, PollPsaEventsResult, PsaActivities
from canonical import TimeApproved
from connectors.kantata.feed import MAX_REMEMBERED, FeedCursor
from ledger.database import Database

from .test_event_window import Account, _account

POLL_LIMIT = 150


@pytest.fixture
async def account() -> AsyncIterator[Account]:
    async for ready in _account():
        yield ready


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Database]:
    database = Database.from_url(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    database.migrate()
    yield database
    database.dispose()


async def _poll_until_caught_up(
    activities: PsaActivities, cursor: FeedCursor, *, max_polls: int
) -> tuple[list[str], list[PollPsaEventsResult]]:
    env = ActivityEnvironment()
    state = cursor.model_dump(mode="json")
    delivered: list[str] = []
    results: list[PollPsaEventsResult] = []
    for _ in range(max_polls):
        result = await env.run(
            activities.poll_psa_events, PollPsaEventsInput(cursor=state, max_events=POLL_LIMIT)
        )
        results.append(result)
        delivered += [event.time_entry_id for event in result.events if isinstance(event, TimeApproved)]
        state = result.cursor
        if not result.more:
            return delivered, results
    raise AssertionError(f"the poller did not reach the end of the feed in {max_polls} polls")


async def test_a_burst_larger_than_one_poll_is_read_to_its_end_once_each(
    account: Account, ledger: Database
) -> None:
    start = FeedCursor.starting_at(account.now() - timedelta(seconds=1))
    approved = await account.approve(700)
    activities = PsaActivities(account.psa, ledger)

    delivered, results = await _poll_until_caught_up(activities, start, max_polls=12)

    assert sorted(delivered) == sorted(approved)
    assert len(results) <= len(approved) // POLL_LIMIT + 2, f"{len(results)} polls for {len(approved)}"
    assert all(result.events for result in results[:-1]), "a poll that delivered nothing did not move on"
    again, _ = await _poll_until_caught_up(
        activities, FeedCursor.model_validate(results[-1].cursor), max_polls=1
    )
    assert again == []


async def test_a_burst_the_cursor_cannot_remember_is_not_delivered_again(
    account: Account, ledger: Database
) -> None:
    start = FeedCursor.starting_at(account.now() - timedelta(seconds=1))
    approved = await account.approve(MAX_REMEMBERED + 300)
    activities = PsaActivities(account.psa, ledger)

    delivered, results = await _poll_until_caught_up(activities, start, max_polls=20)
    cursor = FeedCursor.model_validate(results[-1].cursor)
    again, _ = await _poll_until_caught_up(activities, cursor, max_polls=2)

    assert sorted(delivered) == sorted(approved)
    assert again == []
    # Whole instants are kept, so ties at the floor may push it a little past the limit, never far.
    assert len(cursor.recent) <= MAX_REMEMBERED + 300
    assert cursor.floor is not None or len(cursor.recent) == len(approved)
