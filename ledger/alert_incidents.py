"""The incidents teams are told about, and each notification of them per channel.

The alert scan reports what it finds now (`IncidentFact`s of the kinds it could look at); the ledger opens
an incident for a subject it has no open incident for, and clears the open incidents of those kinds that
were not found. Opening one queues a notification per channel of its owner; clearing queues a resolution
for every channel that was told of the opening (a notification still queued is cancelled instead: nobody
heard of it). So a failure reported again and again, or retried, is one incident and one notification.

Senders claim queued notifications for a while (`claim_deliveries`), send, and record the outcome; a claim
that expires (a sender that died) is taken again by the next sender.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from ledger import checks
from ledger.alert_vocab import AlertKind, AlertPhase, DeliveryState
from ledger.column_types import utc_now
from ledger.tables import AlertDelivery, AlertIncident

ERROR_KEPT = 1000


class IncidentFact(BaseModel):
    """Something the scan found wrong now. `subject` names it: the same subject found again is the same
    incident while that incident is open."""

    model_config = ConfigDict(frozen=True)
    kind: AlertKind
    subject: str
    owner: str
    title: str
    detail: dict[str, Any] = {}


class Incident(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: int
    subject: str
    occurrence: int
    kind: AlertKind
    owner: str
    title: str
    detail: dict[str, Any]
    opened_at: datetime
    cleared_at: datetime | None


class IncidentChanges(BaseModel):
    model_config = ConfigDict(frozen=True)
    opened: list[Incident] = []
    cleared: list[Incident] = []
    # Open incidents that were found again.
    ongoing: int = 0


class QueuedNotification(BaseModel):
    """A notification claimed for sending: which incident, which phase, which channel."""

    model_config = ConfigDict(frozen=True)
    delivery_id: int
    channel: str
    phase: AlertPhase
    attempts: int
    incident: Incident


def reconcile_incidents(
    session: Session,
    *,
    found: Sequence[IncidentFact],
    kinds: Collection[AlertKind],
    channels_for: Callable[[str], Sequence[str]],
    partial: Collection[AlertKind] = (),
    now: datetime | None = None,
) -> IncidentChanges:
    """Bring the open incidents of `kinds` in line with `found`, queueing the notifications that follows.

    Only incidents of `kinds` are cleared: a kind the scan could not look at this time (its source did not
    answer) keeps its incidents as they are, and so does a kind in `partial`, whose facts the scan could
    only read in part (more than it reads at once). `channels_for(owner)` names the channels an opening
    goes to.
    """
    at = now or utc_now()
    looked_at = {AlertKind(kind) for kind in kinds}
    wanted: dict[str, IncidentFact] = {}
    for fact in found:
        if fact.kind not in looked_at:
            raise ValueError(f"{fact.subject} is a {fact.kind} incident, which this scan did not look at")
        wanted[checks.key("subject", fact.subject)] = fact
    open_rows = {
        row.subject: row
        for row in session.scalars(
            select(AlertIncident)
            .where(AlertIncident.cleared_at.is_(None), AlertIncident.kind.in_([k.value for k in looked_at]))
            .with_for_update()
        )
    }
    opened: list[Incident] = []
    cleared: list[Incident] = []
    ongoing = 0
    for subject, fact in wanted.items():
        row = open_rows.get(subject)
        if row is not None:
            ongoing += 1
            if row.title != fact.title or row.detail != fact.detail:
                row.title, row.detail, row.updated_at = fact.title, dict(fact.detail), at
            continue
        previous = session.scalar(
            select(func.max(AlertIncident.occurrence)).where(AlertIncident.subject == subject)
        )
        row = AlertIncident(
            subject=subject,
            occurrence=(previous or 0) + 1,
            kind=fact.kind.value,
            owner=checks.key("owner", fact.owner, max_length=32),
            title=checks.text("title", fact.title),
            detail=checks.json_object("detail", fact.detail),
            opened_at=at,
            cleared_at=None,
            updated_at=at,
        )
        session.add(row)
        session.flush()
        for channel in dict.fromkeys(channels_for(row.owner)):
            session.add(_queued(row.id, AlertPhase.OPENED, channel, at))
        opened.append(_incident(row))
    incomplete = {AlertKind(kind).value for kind in partial}
    for subject, row in open_rows.items():
        if subject in wanted or row.kind in incomplete:
            continue
        row.cleared_at = row.updated_at = at
        _queue_resolutions(session, row, at)
        cleared.append(_incident(row))
    session.flush()
    return IncidentChanges(opened=opened, cleared=cleared, ongoing=ongoing)


def claim_deliveries(
    session: Session, *, lease: timedelta, limit: int = 200, now: datetime | None = None
) -> list[QueuedNotification]:
    """Queued notifications nobody is sending (or due again after a failure), claimed for `lease`."""
    at = now or utc_now()
    rows = list(
        session.scalars(
            select(AlertDelivery)
            .where(
                AlertDelivery.state == DeliveryState.PENDING,
                (AlertDelivery.claimed_until.is_(None)) | (AlertDelivery.claimed_until <= at),
            )
            .order_by(AlertDelivery.id)
            .limit(checks.limit(limit))
            .with_for_update(skip_locked=True)
        )
    )
    incidents = {
        row.id: row
        for row in session.scalars(
            select(AlertIncident).where(AlertIncident.id.in_({row.incident_id for row in rows}))
        )
    }
    for row in rows:
        row.claimed_until = at + lease
    session.flush()
    return [
        QueuedNotification(
            delivery_id=row.id,
            channel=row.channel,
            phase=AlertPhase(row.phase),
            attempts=row.attempts,
            incident=_incident(incidents[row.incident_id]),
        )
        for row in rows
    ]


def deliveries_sent(session: Session, *, delivery_ids: Collection[int], at: datetime | None = None) -> None:
    """Record notifications as sent. An opening whose incident cleared while it was being sent still gets
    its resolution queued: the team heard of the incident, so it hears of the end too."""
    when = at or utc_now()
    for row in _deliveries(session, delivery_ids):
        was_cancelled = row.state == DeliveryState.CANCELLED
        row.state, row.sent_at, row.claimed_until = DeliveryState.SENT, when, None
        row.attempts += 1
        if was_cancelled and row.phase == AlertPhase.OPENED:
            incident = session.get(AlertIncident, row.incident_id)
            if incident is not None and incident.cleared_at is not None:
                _queue(session, incident.id, AlertPhase.RESOLVED, row.channel, when)
    session.flush()


def deliveries_failed(
    session: Session, *, delivery_ids: Collection[int], error: str, retry_at: datetime
) -> None:
    """Record a failed send; the notifications stay queued and are due again at `retry_at`."""
    for row in _deliveries(session, delivery_ids):
        if row.state != DeliveryState.PENDING:
            continue
        row.attempts += 1
        row.last_error = error[:ERROR_KEPT]
        row.claimed_until = retry_at
    session.flush()


def cancel_deliveries(session: Session, *, delivery_ids: Collection[int], reason: str) -> None:
    """Give up notifications that can never be sent (their channel is no longer configured)."""
    session.execute(
        update(AlertDelivery)
        .where(AlertDelivery.id.in_(list(delivery_ids)), AlertDelivery.state == DeliveryState.PENDING)
        .values(state=DeliveryState.CANCELLED, last_error=reason[:ERROR_KEPT], claimed_until=None)
    )


def open_incidents(session: Session) -> list[Incident]:
    rows = session.scalars(
        select(AlertIncident).where(AlertIncident.cleared_at.is_(None)).order_by(AlertIncident.opened_at)
    )
    return [_incident(row) for row in rows]


def incidents_about(session: Session, *, subject: str) -> list[Incident]:
    """Every incident about `subject`, first first."""
    rows = session.scalars(
        select(AlertIncident).where(AlertIncident.subject == subject).order_by(AlertIncident.occurrence)
    )
    return [_incident(row) for row in rows]


def delivery_counts(session: Session) -> dict[tuple[str, str], int]:
    """Notifications by (channel, state), and `(channel, "failing")` for queued ones that failed before."""
    counts: dict[tuple[str, str], int] = {}
    for channel, state, count in session.execute(
        select(AlertDelivery.channel, AlertDelivery.state, func.count()).group_by(
            AlertDelivery.channel, AlertDelivery.state
        )
    ):
        counts[(channel, state)] = count
    for channel, count in session.execute(
        select(AlertDelivery.channel, func.count())
        .where(AlertDelivery.state == DeliveryState.PENDING, AlertDelivery.attempts > 0)
        .group_by(AlertDelivery.channel)
    ):
        counts[(channel, "failing")] = count
    return counts


def _queue_resolutions(session: Session, incident: AlertIncident, at: datetime) -> None:
    for delivery in session.scalars(
        select(AlertDelivery)
        .where(AlertDelivery.incident_id == incident.id, AlertDelivery.phase == AlertPhase.OPENED)
        .with_for_update()
    ):
        if delivery.state == DeliveryState.SENT:
            _queue(session, incident.id, AlertPhase.RESOLVED, delivery.channel, at)
        elif delivery.state == DeliveryState.PENDING:
            delivery.state = DeliveryState.CANCELLED
            delivery.last_error = "the incident cleared before this was sent"


def _queue(session: Session, incident_id: int, phase: AlertPhase, channel: str, at: datetime) -> None:
    exists = session.scalar(
        select(AlertDelivery.id).where(
            AlertDelivery.incident_id == incident_id,
            AlertDelivery.phase == phase,
            AlertDelivery.channel == channel,
        )
    )
    if exists is None:
        session.add(_queued(incident_id, phase, channel, at))


def _queued(incident_id: int, phase: AlertPhase, channel: str, at: datetime) -> AlertDelivery:
    return AlertDelivery(
        incident_id=incident_id,
        phase=phase.value,
        channel=checks.key("channel", channel, max_length=64),
        state=DeliveryState.PENDING.value,
        attempts=0,
        last_error=None,
        claimed_until=None,
        sent_at=None,
        created_at=at,
    )


def _deliveries(session: Session, delivery_ids: Collection[int]) -> list[AlertDelivery]:
    if not delivery_ids:
        return []
    return list(
        session.scalars(
            select(AlertDelivery).where(AlertDelivery.id.in_(list(delivery_ids))).with_for_update()
        )
    )


def _incident(row: AlertIncident) -> Incident:
    return Incident(
        id=row.id,
        subject=row.subject,
        occurrence=row.occurrence,
        kind=AlertKind(row.kind),
        owner=row.owner,
        title=row.title,
        detail=row.detail,
        opened_at=row.opened_at,
        cleared_at=row.cleared_at,
    )
