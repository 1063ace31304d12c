"""How far each polled feed has been read, for freshness: its poller's activity records every read here."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from ledger import checks
from ledger.column_types import utc_now
from ledger.races import insert_unless_present
from ledger.tables import FeedState


class FeedRead(BaseModel):
    model_config = ConfigDict(frozen=True)

    feed: str
    # When the feed last answered a read (however many events it gave).
    read_at: datetime
    # The newest event any read gave so far; None until one did (or when the feed's events carry no time).
    last_event_at: datetime | None
    events_read: int


def record_feed_read(
    session: Session, *, feed: str, read_at: datetime, events: int, newest_event_at: datetime | None
) -> FeedRead:
    """One successful read of `feed`. A read older than the one recorded (a slow, retried attempt) changes
    nothing but the count, so freshness never goes backwards."""
    name = checks.key("feed", feed, max_length=64)
    if events < 0:
        raise ValueError(f"events must not be negative, got {events}")

    def find() -> FeedState | None:
        return session.scalar(select(FeedState).where(FeedState.feed == name).with_for_update())

    def build() -> FeedState:
        return FeedState(feed=name, read_at=read_at, last_event_at=None, events_read=0, updated_at=utc_now())

    row, _ = insert_unless_present(session, find=find, build=build)
    row.read_at = max(row.read_at, read_at)
    if newest_event_at is not None and (row.last_event_at is None or newest_event_at > row.last_event_at):
        row.last_event_at = newest_event_at
    row.events_read += events
    row.updated_at = utc_now()
    session.flush()
    return _read(row)


def feed_reads(session: Session) -> list[FeedRead]:
    return [_read(row) for row in session.scalars(select(FeedState).order_by(FeedState.feed))]


def _read(row: FeedState) -> FeedRead:
    return FeedRead(
        feed=row.feed, read_at=row.read_at, last_event_at=row.last_event_at, events_read=row.events_read
    )
