"""The change feed over time: the 9-day window, a poller back from downtime, events that become visible late.

Each test runs its own sandbox, because it moves that sandbox's clock forward.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest

from canonical import BillingModel, Contract, Money, ProjectSpec, PsaEvent, TimeApproved
from connectors.kantata import KantataConnector
from connectors.kantata.feed import FeedCursor, created_after_for_poll, merge
from sandboxes.kantata.seed import Consultant, KantataSeeder, TimeLog

from .conftest import CURRENCY, Sandbox, start_sandbox


@dataclass
class Account:
    sandbox: Sandbox
    psa: KantataConnector
    seeder: KantataSeeder
    consultant: Consultant
    project_id: str

    def now(self) -> datetime:
        return self.sandbox.app.state.kantata.clock.now()

    def advance(self, **delta: float) -> None:
        self.sandbox.app.state.kantata.clock.advance(timedelta(**delta).total_seconds())

    async def approve(self, count: int) -> list[str]:
        ids = await self.seeder.log_time(
            self.project_id, [TimeLog(self.consultant.user_id, date(2024, 5, 6), 30)] * count
        )
        await self.seeder.submit_and_approve(self.project_id, ids)
        return ids

    async def poll(self, since: datetime) -> list[PsaEvent]:
        return [
            e
            async for page in self.psa.events(created_after=since, event_types=["TimeApproved"])
            for e in page.items
        ]


async def _account(**config: object) -> AsyncIterator[Account]:
    sandbox = start_sandbox(**config)
    psa = sandbox.connector()
    seeder = KantataSeeder.for_sandbox(sandbox.url)
    try:
        consultant = await seeder.consultant("Ada Lovelace", "ada@northwind.example", "Consultant")
        await seeder.rate_card(CURRENCY, {date(2024, 1, 1): {"Consultant": Money.of("150", CURRENCY)}})
        project = await psa.ensure_project(
            ProjectSpec(
                external_ref=f"salesforce:{uuid.uuid4().hex[:10]}",
                name="Window",
                customer_name="Acme",
                contract=Contract(
                    legal_entity="UK",
                    currency=CURRENCY,
                    billing_model=BillingModel.TIME_AND_MATERIALS,
                    tax_code="OUTPUT2",
                ),
                service_code="ADV-TM",
                tasks=("Delivery",),
            )
        )
        await seeder.add_to_project(project.id, [consultant])
        yield Account(sandbox, psa, seeder, consultant, project.id)
    finally:
        await seeder.aclose()
        await psa.aclose()
        sandbox.served.stop()


@pytest.fixture
async def account() -> AsyncIterator[Account]:
    async for ready in _account():
        yield ready


@pytest.fixture
async def lagging_account() -> AsyncIterator[Account]:
    async for ready in _account(event_lag_max_seconds=30.0, seed=9):
        yield ready


def _entry_ids(events: list[PsaEvent] | tuple[PsaEvent, ...]) -> list[str]:
    return [event.time_entry_id for event in events if isinstance(event, TimeApproved)]


async def test_events_older_than_nine_days_are_no_longer_served(account: Account) -> None:
    start = account.now() - timedelta(seconds=1)
    old = await account.approve(2)
    account.advance(days=9, minutes=1)
    new = await account.approve(1)

    # Asking from before the window is allowed; Kantata answers with what it still keeps.
    served = _entry_ids(await account.poll(start))

    assert served == new
    assert not set(served) & set(old)


async def test_a_poller_back_after_ten_days_is_told_of_the_gap_and_gets_what_remains(
    account: Account,
) -> None:
    cursor = FeedCursor.starting_at(account.now() - timedelta(seconds=1))
    first = await account.approve(2)
    polled = merge(cursor, await account.poll(created_after_for_poll(cursor)), now=account.now())
    assert sorted(_entry_ids(polled.events)) == sorted(first)

    account.advance(days=10)
    missed_window_end = account.now() - timedelta(days=9)
    latest = await account.approve(1)
    caught_up = merge(
        polled.cursor, await account.poll(created_after_for_poll(polled.cursor)), now=account.now()
    )

    assert caught_up.gap is not None
    assert caught_up.gap.since == polled.cursor.polled_at
    assert abs((caught_up.gap.until - missed_window_end).total_seconds()) < 5
    assert _entry_ids(caught_up.events) == latest


async def test_events_made_visible_late_are_caught_by_the_overlap_exactly_once(
    lagging_account: Account,
) -> None:
    account = lagging_account
    cursor = FeedCursor.starting_at(account.now() - timedelta(seconds=1))
    approved = await account.approve(20)
    account.advance(seconds=15)  # about half the events have become visible

    early = merge(cursor, await account.poll(created_after_for_poll(cursor)), now=account.now())
    account.advance(seconds=40)
    without_overlap = _entry_ids(await account.poll(created_after_for_poll(early.cursor, timedelta(0))))
    late = merge(
        early.cursor,
        await account.poll(created_after_for_poll(early.cursor, timedelta(minutes=1))),
        now=account.now(),
        overlap=timedelta(minutes=1),
    )

    delivered = _entry_ids(early.events) + _entry_ids(late.events)
    assert 0 < len(_entry_ids(early.events)) < len(approved), "the first poll saw only some events"
    assert sorted(delivered) == sorted(approved)
    assert len(delivered) == len(set(delivered))
    assert len(without_overlap) < len(approved) - len(_entry_ids(early.events)), (
        "no overlap loses late events"
    )


async def test_a_persisted_sandbox_restarts_with_its_records_and_feed(tmp_path: object) -> None:
    path = f"{tmp_path}/kantata.sqlite"
    since = None
    async for account in _account(state_path=path):
        since = account.now() - timedelta(seconds=1)
        approved = await account.approve(3)
        project_id = account.project_id
    assert since is not None

    restarted = start_sandbox(state_path=path)
    psa = restarted.connector()
    try:
        project = await psa.get_project(project_id)
        events = [
            e
            async for page in psa.events(created_after=since, event_types=["TimeApproved"])
            for e in page.items
        ]
        more = await KantataSeeder.for_sandbox(restarted.url).log_time(
            project_id, [TimeLog(user_id="6100002", day=date(2024, 5, 7), minutes=15)]
        )
    finally:
        await psa.aclose()
        restarted.served.stop()

    assert project.name == "Window"
    assert sorted(_entry_ids(events)) == sorted(approved)
    assert int(more[0]) > max(int(entry) for entry in approved), "id sequences continue after a restart"
