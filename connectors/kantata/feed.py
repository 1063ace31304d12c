"""The poller's memory of Kantata's change feed: pure, deterministic, JSON-serialisable.

Kantata has no push webhooks; ps-sync polls `GET /subscribed_events` with `created_after`. The feed keeps
9 days of events, may deliver an event twice, and may make an event visible after later ones (the lag
between a change and its event). So a poll asks from a little before the newest event already seen (the
overlap), and the cursor remembers the ids seen inside that overlap to drop what comes back twice.

Usage in a workflow (all arguments come from workflow state and `workflow.now()`):

    created_after = created_after_for_poll(cursor, OVERLAP)
    ... an activity fetches the pages after `created_after` ...
    merged = merge(cursor, fetched, overlap=OVERLAP, now=poll_started_at)
    if merged.gap: reconcile merged.gap.since .. merged.gap.until from the source (events there are gone)
    handle(merged.events); cursor = merged.cursor

Events are positioned by `occurred_at`, which the Kantata mapping sets to the event's `created_at`: the
instant the feed filters and orders by.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_serializer, field_validator

from canonical import PsaEvent

RETENTION = timedelta(days=9)
DEFAULT_OVERLAP = timedelta(minutes=5)
# Bounds the cursor's size in workflow history (it rides in every poll's result). A burst larger than this
# inside the overlap moves the cursor's floor up instead: see FeedCursor.floor.
MAX_REMEMBERED = 1000


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("feed times must be timezone-aware")
    return value


class SeenEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    event_id: str
    at: AwareDatetime


class FeedGap(BaseModel):
    """Events created in (since, until] may be gone from the feed: the caller must reconcile that span."""

    model_config = ConfigDict(frozen=True)

    since: AwareDatetime
    until: AwareDatetime


class FeedCursor(BaseModel):
    """Where the next poll starts. Written out (to the poller's history, at every poll) `recent` is a list of
    instants with their event ids, runs of consecutive ids as [first, last]: a burst of approvals that Kantata
    stamps with the same second is a few ranges, not thousands of {event_id, at} pairs. Cursors written
    before as such pairs still read."""

    model_config = ConfigDict(frozen=True)

    high_water: AwareDatetime = Field(description="the newest created_at among events seen")
    polled_at: AwareDatetime = Field(description="when the feed was last read to its end (or the gap floor)")
    recent: tuple[SeenEvent, ...] = Field(default=(), description="events seen within the overlap window")
    floor: AwareDatetime | None = Field(
        default=None,
        description="set when a burst overflowed `recent`: events created before it count as seen",
    )

    @field_validator("recent", mode="before")
    @classmethod
    def _recent_from_instants(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and value and isinstance(value[0], dict) and "ids" in value[0]:
            return [
                {"event_id": event_id, "at": group["at"]}
                for group in value
                for event_id in _expand(group["ids"])
            ]
        return value

    @field_serializer("recent", when_used="json")
    def _recent_as_instants(self, recent: tuple[SeenEvent, ...]) -> list[dict[str, Any]]:
        instants: dict[datetime, list[str]] = {}
        for item in recent:
            instants.setdefault(item.at, []).append(item.event_id)
        return [{"at": at.isoformat(), "ids": _ranges(ids)} for at, ids in instants.items()]

    @classmethod
    def starting_at(cls, moment: datetime) -> FeedCursor:
        """A cursor that reads events created after `moment`."""
        return cls(high_water=_aware(moment), polled_at=moment)


def _sequential(event_id: str) -> int | None:
    """An id that is a plain decimal number (no sign, no leading zero), as Kantata's are."""
    plain = event_id.isascii() and event_id.isdigit() and (event_id == "0" or event_id[0] != "0")
    return int(event_id) if plain else None


def _ranges(ids: list[str]) -> list[str | list[str]]:
    """Ids in their order, each run of consecutive numbers of one length as [first, last]."""
    out: list[str | list[str]] = []
    run: list[str] = []

    def close() -> None:
        if len(run) > 2:
            out.append([run[0], run[-1]])
        else:
            out.extend(run)
        run.clear()

    for event_id in ids:
        number = _sequential(event_id)
        if run and number is not None and len(event_id) == len(run[-1]) and number == int(run[-1]) + 1:
            run.append(event_id)
            continue
        close()
        if number is not None:
            run.append(event_id)
        else:
            out.append(event_id)
    close()
    return out


def _expand(ids: list[Any]) -> list[str]:
    expanded: list[str] = []
    for item in ids:
        if isinstance(item, list | tuple):
            first, last = str(item[0]), str(item[1])
            expanded.extend(str(n).zfill(len(first)) for n in range(int(first), int(last) + 1))
        else:
            expanded.append(str(item))
    return expanded


class FeedMerge(BaseModel):
    model_config = ConfigDict(frozen=True)

    events: tuple[PsaEvent, ...]
    cursor: FeedCursor
    gap: FeedGap | None = None


def unseen(cursor: FeedCursor, batch: Iterable[PsaEvent]) -> list[PsaEvent]:
    """The events of a batch the cursor has not seen, each once, in batch order."""
    seen = {item.event_id for item in cursor.recent}
    fresh: dict[str, PsaEvent] = {}
    for event in batch:
        _aware(event.occurred_at)
        below_floor = cursor.floor is not None and event.occurred_at < cursor.floor
        if not below_floor and event.event_id not in seen:
            fresh.setdefault(event.event_id, event)
    return list(fresh.values())


def created_after_for_poll(cursor: FeedCursor, overlap: timedelta = DEFAULT_OVERLAP) -> datetime:
    """`created_after` for the next poll: far enough back to catch events that became visible late.

    Never further back than the floor (less a second, as Kantata's times are whole seconds): re-reading a
    burst the cursor could not remember would fill every poll with events it must then drop.
    """
    since = cursor.high_water - overlap
    if cursor.floor is not None:
        since = max(since, cursor.floor - timedelta(seconds=1))
    return since


def merge(
    cursor: FeedCursor,
    batch: Iterable[PsaEvent],
    *,
    overlap: timedelta = DEFAULT_OVERLAP,
    now: datetime,
    complete: bool = True,
    retention: timedelta = RETENTION,
    max_remembered: int = MAX_REMEMBERED,
) -> FeedMerge:
    """New events of a fetched batch (any order, duplicates allowed), oldest first, and the next cursor.

    `now` is when the poll was made; `complete` says the batch holds everything the poll returned (its last
    page). If the feed was last read further back than its retention, the span it can no longer show is
    returned as a gap instead of being silently skipped.
    """
    _aware(now)
    retained_from = now - retention
    gap = FeedGap(since=cursor.polled_at, until=retained_from) if cursor.polled_at < retained_from else None
    ordered = sorted(unseen(cursor, batch), key=lambda event: (event.occurred_at, event.event_id))
    high_water = max([cursor.high_water, *(event.occurred_at for event in ordered)])
    keep_from = high_water - overlap
    remembered = [item for item in cursor.recent if item.at >= keep_from]
    remembered += [
        SeenEvent(event_id=event.event_id, at=event.occurred_at)
        for event in ordered
        if event.occurred_at >= keep_from
    ]
    remembered.sort(key=lambda item: (item.at, item.event_id))
    floor = cursor.floor if cursor.floor is not None and cursor.floor > keep_from else None
    if len(remembered) > max_remembered:
        # Forget whole instants, oldest first, and raise the floor to the oldest one kept: every event
        # from the floor up is remembered, everything below it counts as seen. Dropping only part of an
        # instant would let its forgotten events come back as new on every poll.
        floor = remembered[len(remembered) - max_remembered].at
        remembered = [item for item in remembered if item.at >= floor]
    # After a gap is reported once, its floor counts as read, so the same gap is not reported again.
    polled_at = now if complete else (retained_from if gap is not None else cursor.polled_at)
    next_cursor = FeedCursor(
        high_water=high_water, polled_at=polled_at, recent=tuple(remembered), floor=floor
    )
    return FeedMerge(events=tuple(ordered), cursor=next_cursor, gap=gap)
