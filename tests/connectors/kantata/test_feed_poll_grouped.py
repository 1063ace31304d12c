"""The poll_psa_events activity asked for grouped results: billing nudges instead of the events, so what the
poller's history keeps of a poll is a few ids per billing run, not a thousand whole events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.psa import PollPsaEventsInput, PollPsaEventsResult, PsaActivities
from canonical.events import item_key
from connectors.kantata.feed import FeedCursor
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


async def _poll_to_the_end(activities: PsaActivities, cursor: FeedCursor) -> list[PollPsaEventsResult]:
    env = ActivityEnvironment()
    state = cursor.model_dump(mode="json")
    results: list[PollPsaEventsResult] = []
    for _ in range(12):
        result = await env.run(
            activities.poll_psa_events, PollPsaEventsInput(cursor=state, max_events=POLL_LIMIT, grouped=True)
        )
        results.append(result)
        state = result.cursor
        if not result.more:
            return results
    raise AssertionError("the poller did not reach the end of the feed in 12 polls")


async def test_a_grouped_poll_names_every_approved_entry_in_one_nudge_per_billing_run(
    account: Account, ledger: Database
) -> None:
    start = FeedCursor.starting_at(account.now() - timedelta(seconds=1))
    approved = await account.approve(400)
    activities = PsaActivities(account.psa, ledger)

    results = await _poll_to_the_end(activities, start)

    assert all(result.events == [] for result in results)
    assert sum(result.events_read for result in results) == len(approved)
    nudges = [nudge for result in results for nudge in result.nudges]
    # All of it was worked on one day of May 2024 on one project: one billing run per poll that read any.
    assert {(nudge.project_id, nudge.period) for nudge in nudges} == {(account.project_id, "2024-05")}
    assert len(nudges) == len([result for result in results if result.events_read])
    assert sorted(item for nudge in nudges for item in nudge.item_ids) == sorted(
        item_key("time", entry) for entry in approved
    )
    assert len({event for nudge in nudges for event in nudge.event_ids}) == len(approved)


async def test_a_grouped_poll_result_is_a_fraction_of_the_events_it_read(
    account: Account, ledger: Database
) -> None:
    start = FeedCursor.starting_at(account.now() - timedelta(seconds=1)).model_dump(mode="json")
    await account.approve(POLL_LIMIT)
    activities = PsaActivities(account.psa, ledger)
    env = ActivityEnvironment()

    # The activity only reads: the same cursor reads the same events either way.
    events = await env.run(
        activities.poll_psa_events, PollPsaEventsInput(cursor=start, max_events=POLL_LIMIT)
    )
    grouped = await env.run(
        activities.poll_psa_events, PollPsaEventsInput(cursor=start, max_events=POLL_LIMIT, grouped=True)
    )

    assert grouped.events_read == len(events.events) == POLL_LIMIT
    # The cursor is the same size either way; what the poll read is a few ids per event instead of the event.
    read, read_grouped = (len(result.model_dump_json(exclude={"cursor"})) for result in (events, grouped))
    assert read_grouped * 4 < read
