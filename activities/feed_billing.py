"""One poll of the PSA change feed that nudges the billing runs itself.

The poller's history then holds one small activity per poll (a cursor and a few counts) instead of one
billing start per (project, period) the events concern, each carrying event ids, item ids and the legal
entities' configuration.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.billing_starter import StartBillingInput, StarterActivities
from activities.psa import read_psa_feed
from canonical import LegalEntity
from connectors.roles import PsaConnector
from domain.feed_nudges import BillingNudge, group_billing_nudges
from ledger.database import Database

# Signal-with-starts in flight at once: the Temporal server slows down when flooded.
NUDGES_AT_ONCE = 10


class PollAndNudgeBillingInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    psa: str
    entities: tuple[LegalEntity, ...]
    settle_seconds: int
    invoice_poll_interval_seconds: int
    cursor: dict[str, Any] | None = None
    max_events: int = 1000


class PollAndNudgeBillingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    cursor: dict[str, Any]
    # More events are waiting: poll again at once instead of sleeping.
    more: bool
    # Set when the feed no longer holds events we never read (downtime longer than its window).
    gap: str | None = None
    events_read: int
    # Billing runs signalled or started; a finished run owing nothing the events named is not counted.
    runs_nudged: int


class FeedBillingActivities:
    def __init__(self, psa: PsaConnector, database: Database, starter: StarterActivities) -> None:
        self._psa = psa
        self._db = database
        self._starter = starter

    @activity.defn
    async def poll_and_nudge_billing(self, input: PollAndNudgeBillingInput) -> PollAndNudgeBillingResult:
        """Read the feed from the cursor and signal-with-start each billing run its events concern.

        A retry reads from the same cursor and nudges again: a billing run ignores event ids it heard.
        """
        poll = await read_psa_feed(self._psa, self._db, cursor=input.cursor, max_events=input.max_events)
        nudges = group_billing_nudges(poll.events)
        nudged = 0
        for start in range(0, len(nudges), NUDGES_AT_ONCE):
            batch = nudges[start : start + NUDGES_AT_ONCE]
            results = await asyncio.gather(*(self._starter.nudge(_start_input(input, n)) for n in batch))
            nudged += sum(result.nudged for result in results)
            activity.heartbeat(f"{start + len(batch)} of {len(nudges)} billing runs nudged")
        return PollAndNudgeBillingResult(
            cursor=poll.cursor, more=poll.more, gap=poll.gap, events_read=len(poll.events), runs_nudged=nudged
        )


def _start_input(input: PollAndNudgeBillingInput, nudge: BillingNudge) -> StartBillingInput:
    return StartBillingInput(
        project_id=nudge.project_id,
        period=nudge.period,
        psa=input.psa,
        entities=input.entities,
        settle_seconds=input.settle_seconds,
        invoice_poll_interval_seconds=input.invoice_poll_interval_seconds,
        event_ids=nudge.event_ids,
        item_ids=nudge.item_ids,
    )
