"""Each successful read of a polled feed, recorded for freshness (the ledger's feed_state) and for metrics.

Called by the pollers' activities right after the vendor answered. Bookkeeping never fails a read: a ledger
or metric problem is logged and the poll goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import structlog

from canonical import PsaEvent
from ledger.database import Database
from ledger.feed_state import record_feed_read
from observability import metrics
from runs.payment_feed import workflow_id as payment_feed_id
from runs.psa_feed import workflow_id as psa_feed_id

log = structlog.get_logger("pssync.feeds")


async def note_feed_read(
    database: Database, *, feed: str, event_times: Sequence[datetime], read_at: datetime | None = None
) -> None:
    at = read_at or datetime.now(UTC)
    try:
        times = [moment if moment.tzinfo else moment.replace(tzinfo=UTC) for moment in event_times]
        metrics.feed_read(feed, read_at=at, event_times=times)

        def write() -> None:
            with database.session() as session:
                record_feed_read(
                    session,
                    feed=feed,
                    read_at=at,
                    events=len(times),
                    newest_event_at=max(times, default=None),
                )

        await asyncio.to_thread(write)
    except Exception as error:
        log.warning("feed_read_unrecorded", feed=feed, error=f"{type(error).__name__}: {error}"[:500])


async def note_psa_feed_read(database: Database, *, psa: str, events: Sequence[PsaEvent]) -> None:
    await note_feed_read(database, feed=psa_feed_id(psa), event_times=[event.occurred_at for event in events])


async def note_payment_feed_read(database: Database, *, erp: str, read_at: datetime | None) -> None:
    # Payments carry a date, not a time: the feed's freshness is when it answered.
    await note_feed_read(database, feed=payment_feed_id(erp), event_times=(), read_at=read_at)
