"""FeedCursor: what a poller needs to read Kantata's change feed once, in order, and notice what it lost."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from canonical import TimeApproved
from connectors.kantata.feed import (
    DEFAULT_OVERLAP,
    FeedCursor,
    FeedGap,
    SeenEvent,
    created_after_for_poll,
    merge,
)

T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)


def _event(event_id: str, seconds: float) -> TimeApproved:
    return TimeApproved(
        source="kantata",
        occurred_at=T0 + timedelta(seconds=seconds),
        event_id=event_id,
        time_entry_id=f"te-{event_id}",
        project_id="p1",
        entry_date=date(2024, 5, 14),
    )


def _ids(events: tuple[TimeApproved, ...] | tuple[object, ...]) -> list[str]:
    return [event.event_id for event in events]  # type: ignore[attr-defined]


def test_a_reordered_batch_with_duplicates_comes_out_once_each_oldest_first() -> None:
    cursor = FeedCursor.starting_at(T0)
    batch = [_event("c", 30), _event("a", 10), _event("c", 30), _event("b", 20), _event("a", 10)]

    merged = merge(cursor, batch, now=T0 + timedelta(minutes=1))

    assert _ids(merged.events) == ["a", "b", "c"]
    assert merged.cursor.high_water == T0 + timedelta(seconds=30)
    assert merged.gap is None


def test_events_seen_in_the_overlap_are_not_delivered_again_by_the_next_poll() -> None:
    first = merge(
        FeedCursor.starting_at(T0), [_event("a", 10), _event("b", 20)], now=T0 + timedelta(minutes=1)
    )
    # The next poll asks from before the high water, so it gets a and b again plus a late c and a new d.
    since = created_after_for_poll(first.cursor, DEFAULT_OVERLAP)
    assert since == T0 + timedelta(seconds=20) - DEFAULT_OVERLAP

    second = merge(
        first.cursor,
        [_event("b", 20), _event("a", 10), _event("c", 15), _event("d", 40)],
        now=T0 + timedelta(minutes=2),
    )

    assert _ids(second.events) == ["c", "d"]
    assert second.cursor.high_water == T0 + timedelta(seconds=40)


def test_ties_at_the_same_instant_order_by_event_id_so_replays_agree() -> None:
    batch = [_event("b", 5), _event("a", 5), _event("c", 5)]

    first = merge(FeedCursor.starting_at(T0), batch, now=T0 + timedelta(minutes=1))
    again = merge(FeedCursor.starting_at(T0), list(reversed(batch)), now=T0 + timedelta(minutes=1))

    assert _ids(first.events) == _ids(again.events) == ["a", "b", "c"]
    assert first.cursor == again.cursor


def test_the_cursor_forgets_events_older_than_the_overlap() -> None:
    merged = merge(
        FeedCursor.starting_at(T0),
        [_event("old", 0), _event("new", 600)],
        now=T0 + timedelta(hours=1),
        overlap=timedelta(minutes=5),
    )

    assert [seen.event_id for seen in merged.cursor.recent] == ["new"]


def test_the_cursor_stays_bounded_under_a_burst() -> None:
    burst = [_event(f"e{i:05d}", 1 + i / 1000) for i in range(300)]

    merged = merge(FeedCursor.starting_at(T0), burst, now=T0 + timedelta(minutes=1), max_remembered=100)

    assert len(merged.events) == 300
    assert len(merged.cursor.recent) == 100
    assert merged.cursor.recent[-1].event_id == "e00299"


def test_catching_up_within_the_retention_window_reports_no_gap() -> None:
    cursor = FeedCursor.starting_at(T0)

    merged = merge(cursor, [_event("a", 60)], now=T0 + timedelta(days=8, hours=23))

    assert merged.gap is None
    assert _ids(merged.events) == ["a"]


def test_downtime_longer_than_nine_days_is_reported_as_a_gap_not_skipped() -> None:
    cursor = FeedCursor.starting_at(T0)
    now = T0 + timedelta(days=12)

    merged = merge(cursor, [_event("late", 11 * 86400)], now=now)

    assert merged.gap == FeedGap(since=T0, until=now - timedelta(days=9))
    assert _ids(merged.events) == ["late"], "what the feed still has is delivered alongside the gap"


def test_a_gap_is_reported_once_even_when_a_poll_is_merged_page_by_page() -> None:
    now = T0 + timedelta(days=12)
    page_one = merge(FeedCursor.starting_at(T0), [_event("a", 10 * 86400)], now=now, complete=False)
    page_two = merge(page_one.cursor, [_event("b", 11 * 86400)], now=now, complete=True)

    assert page_one.gap is not None
    assert page_two.gap is None
    assert page_two.cursor.polled_at == now


def test_a_quiet_feed_is_not_mistaken_for_a_gap() -> None:
    # Nothing happened for ten days, but the poller read the feed every few minutes throughout.
    cursor = FeedCursor.starting_at(T0)
    for hours in range(1, 240, 6):
        cursor = merge(cursor, [], now=T0 + timedelta(hours=hours)).cursor

    merged = merge(cursor, [], now=T0 + timedelta(days=10, hours=1))

    assert merged.gap is None
    assert merged.cursor.high_water == T0


def test_the_cursor_round_trips_through_json_for_workflow_history() -> None:
    merged = merge(
        FeedCursor.starting_at(T0), [_event("a", 10), _event("b", 20)], now=T0 + timedelta(minutes=1)
    )

    restored = FeedCursor.model_validate_json(merged.cursor.model_dump_json())

    assert restored == merged.cursor
    assert type(merged).model_validate_json(merged.model_dump_json()) == merged


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        FeedCursor.starting_at(datetime(2024, 5, 14, 9, 0))
    with pytest.raises(ValueError):
        merge(FeedCursor.starting_at(T0), [], now=datetime(2024, 5, 14, 9, 0))


def test_a_burst_past_the_memory_limit_raises_the_floor_by_whole_instants() -> None:
    # Kantata stamps events to the second: 100 events in each of 5 seconds, room to remember 250.
    burst = [_event(f"s{second}-{i:03d}", second) for second in range(1, 6) for i in range(100)]

    merged = merge(FeedCursor.starting_at(T0), burst, now=T0 + timedelta(minutes=1), max_remembered=250)
    replayed = merge(merged.cursor, burst, now=T0 + timedelta(minutes=2), max_remembered=250)

    assert merged.cursor.floor == T0 + timedelta(seconds=3)
    assert {item.at for item in merged.cursor.recent} == {T0 + timedelta(seconds=s) for s in (3, 4, 5)}
    assert created_after_for_poll(merged.cursor) == T0 + timedelta(seconds=2)
    assert replayed.events == ()


def test_the_floor_is_dropped_once_the_overlap_has_moved_past_it() -> None:
    burst = [_event(f"b{i:03d}", 1) for i in range(10)] + [_event(f"c{i:03d}", 2) for i in range(10)]
    crowded = merge(FeedCursor.starting_at(T0), burst, now=T0 + timedelta(minutes=1), max_remembered=10)
    assert crowded.cursor.floor == T0 + timedelta(seconds=2)

    later = merge(crowded.cursor, [_event("late", 3600)], now=T0 + timedelta(hours=2), max_remembered=10)

    assert later.cursor.floor is None
    assert created_after_for_poll(later.cursor) == T0 + timedelta(seconds=3600) - DEFAULT_OVERLAP


# -- the cursor as written to history -----------------------------------------------------------------------

_IDS = st.one_of(
    st.integers(min_value=0, max_value=10**12).map(str),
    st.from_regex(r"0[0-9]{1,4}", fullmatch=True),
    st.text(alphabet="0123456789abc-²", min_size=1, max_size=8),
)


@given(
    st.lists(
        st.tuples(_IDS, st.integers(min_value=0, max_value=5)),
        min_size=0,
        max_size=60,
        unique_by=lambda p: p[0],
    ),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=10**9),
)
def test_a_cursor_reads_back_exactly_what_it_wrote(
    seen: list[tuple[str, int]], burst: int, first_in_burst: int
) -> None:
    # Odd ids beside a burst of consecutive ones (Kantata numbers its events), some sharing an instant.
    pairs = seen + [(str(first_in_burst + n), 3) for n in range(burst)]
    recent = sorted(
        {
            event_id: SeenEvent(event_id=event_id, at=T0 + timedelta(seconds=s)) for event_id, s in pairs
        }.values(),
        key=lambda item: (item.at, item.event_id),
    )
    cursor = FeedCursor(high_water=T0 + timedelta(seconds=5), polled_at=T0, recent=tuple(recent), floor=T0)

    written = json.loads(json.dumps(cursor.model_dump(mode="json")))

    assert FeedCursor.model_validate(written) == cursor


def test_a_burst_stamped_with_one_second_is_written_as_a_range() -> None:
    at = T0 + timedelta(seconds=1)
    recent = tuple(SeenEvent(event_id=str(800_000_000 + n), at=at) for n in range(3000))
    cursor = FeedCursor(high_water=at, polled_at=at, recent=recent)

    written = cursor.model_dump(mode="json")

    assert written["recent"] == [{"at": at.isoformat(), "ids": [["800000000", "800002999"]]}]
    assert len(json.dumps(written)) < 300


def test_a_cursor_written_as_event_pairs_still_reads() -> None:
    written = {
        "high_water": "2024-05-14T09:00:05Z",
        "polled_at": "2024-05-14T09:00:00Z",
        "recent": [
            {"event_id": "e1", "at": "2024-05-14T09:00:01Z"},
            {"event_id": "7", "at": "2024-05-14T09:00:02Z"},
        ],
    }

    cursor = FeedCursor.model_validate(written)

    assert [(item.event_id, item.at) for item in cursor.recent] == [
        ("e1", T0 + timedelta(seconds=1)),
        ("7", T0 + timedelta(seconds=2)),
    ]
