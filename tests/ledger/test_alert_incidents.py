"""The alert ledger on SQLite and PostgreSQL: one incident per subject while it lasts, a notification per
channel for its opening, a resolution only where the opening was heard, and claims that keep two senders
apart."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime, timedelta

import pytest

from ledger.alert_incidents import (
    IncidentChanges,
    IncidentFact,
    claim_deliveries,
    deliveries_failed,
    deliveries_sent,
    incidents_about,
    open_incidents,
    reconcile_incidents,
)
from ledger.alert_vocab import AlertKind, AlertPhase
from ledger.database import Database
from ledger.feed_state import feed_reads, record_feed_read

ALL_KINDS = set(AlertKind)
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


def fact(subject: str, kind: AlertKind = AlertKind.NEW_EXCEPTION, title: str = "refused") -> IncidentFact:
    return IncidentFact(kind=kind, subject=subject, owner="finance", title=title, detail={"n": 1})


def channels(owner: str) -> list[str]:
    return [f"webhook:{owner}", f"email:{owner}"]


def reconcile(
    db: Database,
    *facts: IncidentFact,
    at: datetime = NOW,
    kinds: Collection[AlertKind] = ALL_KINDS,
    partial: Collection[AlertKind] = (),
) -> IncidentChanges:
    with db.session() as session:
        return reconcile_incidents(
            session, found=list(facts), kinds=kinds, channels_for=channels, partial=partial, now=at
        )


def claim(db: Database, at: datetime = NOW) -> list[tuple[str, AlertPhase, int]]:
    with db.session() as session:
        claimed = claim_deliveries(session, lease=LEASE, now=at)
    return [(item.channel, item.phase, item.delivery_id) for item in claimed]


def test_a_subject_found_again_is_one_incident_and_one_notification_per_channel(db: Database) -> None:
    first = reconcile(db, fact("exception:1"))
    again = reconcile(db, fact("exception:1", title="refused again"), at=NOW + timedelta(minutes=1))

    assert [i.subject for i in first.opened] == ["exception:1"] and again.opened == [] and again.ongoing == 1
    queued = claim(db)
    assert sorted((channel, phase) for channel, phase, _ in queued) == [
        ("email:finance", AlertPhase.OPENED),
        ("webhook:finance", AlertPhase.OPENED),
    ]
    # Claimed: another sender within the lease finds nothing.
    assert claim(db, NOW + timedelta(seconds=30)) == []
    with db.session() as session:
        [incident] = open_incidents(session)
    assert incident.title == "refused again"


def test_clearing_queues_resolutions_only_where_the_opening_was_sent(db: Database) -> None:
    reconcile(db, fact("exception:2"))
    queued = claim(db)
    webhook = next(delivery for channel, _, delivery in queued if channel.startswith("webhook"))
    email = next(delivery for channel, _, delivery in queued if channel.startswith("email"))
    with db.session() as session:
        deliveries_sent(session, delivery_ids=[webhook], at=NOW)
        deliveries_failed(
            session, delivery_ids=[email], error="smtp down", retry_at=NOW + timedelta(minutes=2)
        )

    cleared = reconcile(db, at=NOW + timedelta(minutes=5))

    assert [i.subject for i in cleared.cleared] == ["exception:2"]
    # The email never went out: it is cancelled, and no resolution follows it.
    assert [(c, p) for c, p, _ in claim(db, NOW + timedelta(minutes=10))] == [
        ("webhook:finance", AlertPhase.RESOLVED)
    ]


def test_a_subject_back_after_clearing_is_a_new_occurrence(db: Database) -> None:
    reconcile(db, fact("feed-stale:psa-feed:kantata", AlertKind.FEED_STALE))
    reconcile(db, at=NOW + timedelta(minutes=1))
    reconcile(db, fact("feed-stale:psa-feed:kantata", AlertKind.FEED_STALE), at=NOW + timedelta(minutes=2))
    with db.session() as session:
        occurrences = incidents_about(session, subject="feed-stale:psa-feed:kantata")
    assert [i.occurrence for i in occurrences] == [1, 2]
    assert occurrences[0].cleared_at is not None and occurrences[1].cleared_at is None


def test_kinds_not_looked_at_or_read_in_part_are_never_cleared(db: Database) -> None:
    reconcile(db, fact("approval-overdue:run-1", AlertKind.APPROVAL_OVERDUE), fact("exception:3"))

    # Temporal did not answer: its kind is left out, and its incident stands.
    unseen = reconcile(
        db, kinds={AlertKind.NEW_EXCEPTION, AlertKind.FEED_STALE}, at=NOW + timedelta(minutes=1)
    )
    assert [i.subject for i in unseen.cleared] == ["exception:3"]
    partial = reconcile(db, partial={AlertKind.APPROVAL_OVERDUE}, at=NOW + timedelta(minutes=2))
    assert partial.cleared == []
    with db.session() as session:
        assert [i.subject for i in open_incidents(session)] == ["approval-overdue:run-1"]
    with pytest.raises(ValueError, match="did not look at"):
        reconcile(db, fact("exception:4"), kinds={AlertKind.FEED_STALE})


def test_a_failed_send_is_due_again_only_after_its_back_off(db: Database) -> None:
    reconcile(db, fact("exception:5"))
    ids = [delivery for _, _, delivery in claim(db)]
    with db.session() as session:
        deliveries_failed(
            session, delivery_ids=ids, error="webhook answered 503", retry_at=NOW + timedelta(minutes=4)
        )
    assert claim(db, NOW + timedelta(minutes=3)) == []
    assert len(claim(db, NOW + timedelta(minutes=4))) == 2


def test_an_opening_sent_after_its_incident_cleared_still_gets_its_resolution(db: Database) -> None:
    reconcile(db, fact("exception:6"))
    ids = [delivery for _, _, delivery in claim(db)]
    # Cleared while the sender was at it: the queued openings were cancelled under it.
    reconcile(db, at=NOW + timedelta(seconds=10))
    with db.session() as session:
        deliveries_sent(session, delivery_ids=ids, at=NOW + timedelta(seconds=20))
    assert sorted((c, p) for c, p, _ in claim(db, NOW + timedelta(minutes=1))) == [
        ("email:finance", AlertPhase.RESOLVED),
        ("webhook:finance", AlertPhase.RESOLVED),
    ]


def test_feed_reads_never_move_freshness_backwards(db: Database) -> None:
    with db.session() as session:
        record_feed_read(session, feed="psa-feed:kantata", read_at=NOW, events=3, newest_event_at=NOW)
        # A slow, retried attempt reporting an older read.
        record_feed_read(
            session,
            feed="psa-feed:kantata",
            read_at=NOW - timedelta(minutes=5),
            events=1,
            newest_event_at=NOW - timedelta(minutes=9),
        )
        [read] = feed_reads(session)
    assert (read.read_at, read.last_event_at, read.events_read) == (NOW, NOW, 4)
