"""Alert activities: find what is wrong now and record it as incidents, then notify the owning teams.

What counts as an incident, by kind:
- new_exception: an exception waiting for a person (open or being retried), to its owner. The same item
  reported again, or retried, stays one incident; resolved or skipped, it clears.
- vendor_failing: an open vendor-trouble exception (`activities.vendor_trouble`) whose calls have failed
  for longer than `alert_vendor_failing_after_seconds`, to integration support.
- feed_stale: a polled feed not read successfully for longer than `alert_feed_stale_after_seconds`
  (the ledger's feed_state, written by the pollers' activities), to integration support.
- approval_overdue: a billing run still waiting for finance after its reminder deadline (the run itself
  moves to `approval_reminded` when the deadline passes; Temporal visibility lists it), to finance.

Everything is read from durable state (the ledger, Temporal), so a worker restart or a second worker changes
nothing, and a source that does not answer leaves its incidents as they were rather than clearing them.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog
from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import Client

from activities.alert_channels import ChannelName, ChannelUnavailable, channels_for, send
from activities.alert_messages import Links, compose
from activities.vendor_incidents import PROCESS as VENDOR_TROUBLE
from activities.vendor_incidents import incident_record
from config import Settings
from ledger.alert_incidents import (
    IncidentChanges,
    IncidentFact,
    QueuedNotification,
    cancel_deliveries,
    claim_deliveries,
    deliveries_failed,
    deliveries_sent,
    reconcile_incidents,
)
from ledger.alert_vocab import AlertKind, AlertPhase
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.feed_state import FeedRead, feed_reads
from ledger.records import ExceptionItem
from ledger.repository import list_exceptions
from ledger.vocab import ExceptionStatus
from observability import metrics
from runs import search_attributes as sa
from runs.time_to_billing import WORKFLOW_TYPE as TIME_TO_BILLING
from runs.time_to_billing import TimeToBillingStatus

log = structlog.get_logger("pssync.alerts")

INTEGRATION_SUPPORT, FINANCE = "integration_support", "finance"
OVERDUE_STAGES = ("approval_reminded", "approval_escalated")
# The most waiting exceptions of each status one scan looks at; beyond it the oldest are kept.
EXCEPTIONS_SCANNED = 5000
APPROVALS_SCANNED = 1000
QUERY_CONCURRENCY = 8
QUERY_TIMEOUT_SECONDS = 5.0
QUERIES_BUDGET_SECONDS = 20.0
# A sender holds what it claimed this long; a sender that died leaves it to the next scan after that.
SEND_LEASE = timedelta(minutes=2)
SEND_BATCH = 200
RETRY_AFTER_FAILURE_MAX = timedelta(hours=1)


class RecordAlertIncidentsInput(BaseModel):
    model_config = ConfigDict(frozen=True)


class RecordAlertIncidentsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    opened: int
    cleared: int
    ongoing: int
    unseen_kinds: tuple[str, ...] = ()


class SendAlertsInput(BaseModel):
    model_config = ConfigDict(frozen=True)


class SendAlertsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    sent: int
    failed: int
    cancelled: int


class AlertActivities:
    def __init__(self, database: Database, client: Client, settings: Settings) -> None:
        self._db = database
        self._client = client
        self._settings = settings

    @activity.defn
    async def record_alert_incidents(self, input: RecordAlertIncidentsInput) -> RecordAlertIncidentsResult:
        now = utc_now()
        exceptions, feeds, truncated = await asyncio.to_thread(self._read_ledger)
        # More waiting than one scan reads: the unread ones must not count as cleared.
        partial = {AlertKind.NEW_EXCEPTION, AlertKind.VENDOR_FAILING} if truncated else set()
        found = [*self._exception_facts(exceptions, now), *self._feed_facts(feeds, now)]
        kinds = {AlertKind.NEW_EXCEPTION, AlertKind.VENDOR_FAILING, AlertKind.FEED_STALE}
        unseen: list[str] = []
        try:
            found += await self._overdue_approvals()
            kinds.add(AlertKind.APPROVAL_OVERDUE)
        except Exception as error:
            unseen.append(AlertKind.APPROVAL_OVERDUE.value)
            log.warning(
                "alert_source_unavailable", kind=AlertKind.APPROVAL_OVERDUE.value, error=str(error)[:500]
            )

        def record() -> IncidentChanges:
            with self._db.session() as session:
                return reconcile_incidents(
                    session,
                    found=found,
                    kinds=kinds,
                    channels_for=lambda owner: channels_for(self._settings, owner),
                    partial=partial,
                    now=now,
                )

        changes = await asyncio.to_thread(record)
        # After the commit: an attempt retried after it sees the incidents as open already, so none is counted
        # twice.
        for incident in changes.opened:
            metrics.alert_incident_opened(incident.kind.value, incident.owner)
            if incident.kind == AlertKind.NEW_EXCEPTION:
                metrics.exception_opened(incident.owner)
            log.info(
                "alert_incident_opened",
                kind=incident.kind.value,
                owner=incident.owner,
                subject=incident.subject,
            )
        for incident in changes.cleared:
            metrics.alert_incident_cleared(incident.kind.value, incident.owner)
            if incident.kind == AlertKind.NEW_EXCEPTION:
                metrics.exception_resolved(incident.owner)
            log.info(
                "alert_incident_cleared",
                kind=incident.kind.value,
                owner=incident.owner,
                subject=incident.subject,
            )
        return RecordAlertIncidentsResult(
            opened=len(changes.opened),
            cleared=len(changes.cleared),
            ongoing=changes.ongoing,
            unseen_kinds=tuple(unseen),
        )

    @activity.defn
    async def send_alerts(self, input: SendAlertsInput) -> SendAlertsResult:
        """Send what is queued, one message per channel (a digest when several wait); a channel that fails
        keeps its notifications queued for a later scan, without holding the others back."""
        settings = self._settings

        def claim() -> list[QueuedNotification]:
            with self._db.session() as session:
                return claim_deliveries(session, lease=SEND_LEASE, limit=SEND_BATCH)

        claimed = await asyncio.to_thread(claim)
        by_channel: dict[str, list[QueuedNotification]] = defaultdict(list)
        for item in claimed:
            by_channel[item.channel].append(item)
        links = Links(
            temporal_ui_url=settings.temporal_ui_url,
            namespace=settings.temporal_namespace,
            ops_url=f"{settings.ingress_public_url.rstrip('/')}/ops",
        )
        domain = settings.alert_email_from.rpartition("@")[2] or "ps-sync.local"
        sent = failed = cancelled = 0
        async with httpx.AsyncClient() as http:
            for name, items in by_channel.items():
                channel = ChannelName.parse(name)
                ids = [item.delivery_id for item in items]
                message = compose(channel.team, items, links, sender_domain=domain)
                try:
                    await send(settings, http, channel, message)
                except ChannelUnavailable as error:
                    await asyncio.to_thread(self._cancel, ids, str(error))
                    cancelled += len(items)
                    log.warning("alert_channel_unavailable", channel=name, notifications=len(items))
                    continue
                except Exception as error:
                    attempts = max(item.attempts for item in items)
                    retry_at = utc_now() + min(timedelta(minutes=2**attempts), RETRY_AFTER_FAILURE_MAX)
                    problem = f"{type(error).__name__}: {error}"
                    await asyncio.to_thread(self._failed, ids, problem, retry_at)
                    failed += len(items)
                    _count(channel, items, sent=False)
                    log.warning("alert_not_sent", channel=name, notifications=len(items), error=problem[:500])
                    continue
                await asyncio.to_thread(self._sent, ids)
                sent += len(items)
                _count(channel, items, sent=True)
                log.info("alert_sent", channel=name, notifications=len(items), subject=message.subject)
        return SendAlertsResult(sent=sent, failed=failed, cancelled=cancelled)

    # --- the sources ---------------------------------------------------------------------------------------

    def _read_ledger(self) -> tuple[list[ExceptionItem], list[FeedRead], bool]:
        with self._db.session(read_only=True) as session:
            waiting, truncated = [], False
            for status in (ExceptionStatus.OPEN, ExceptionStatus.RETRYING):
                items = list_exceptions(session, status=status, limit=EXCEPTIONS_SCANNED)
                waiting += items
                truncated = truncated or len(items) >= EXCEPTIONS_SCANNED
            return waiting, feed_reads(session), truncated

    def _exception_facts(self, items: list[ExceptionItem], now: datetime) -> list[IncidentFact]:
        failing_for = timedelta(seconds=self._settings.alert_vendor_failing_after_seconds)
        facts = []
        for item in items:
            detail: dict[str, Any] = {
                "exception_id": item.id,
                "process": item.process,
                "waiting_since": item.created_at.isoformat(timespec="seconds"),
                "workflow_id": item.workflow_id,
            }
            if item.process == VENDOR_TROUBLE:
                record = incident_record(item)
                since = record.since if record is not None else item.created_at
                if now - since < failing_for:
                    continue
                vendor = record.vendor if record is not None else "a vendor"
                operation = f" {record.operation}" if record is not None else ""
                facts.append(
                    IncidentFact(
                        kind=AlertKind.VENDOR_FAILING,
                        subject=f"vendor-failing:exception:{item.id}",
                        owner=item.owner.value,
                        title=f"{vendor}{operation} has been failing since {since:%Y-%m-%d %H:%M} UTC",
                        detail={**detail, "reason": item.reason},
                    )
                )
                continue
            facts.append(
                IncidentFact(
                    kind=AlertKind.NEW_EXCEPTION,
                    subject=f"exception:{item.id}",
                    owner=item.owner.value,
                    title=item.reason,
                    detail=detail,
                )
            )
        return facts

    def _feed_facts(self, feeds: list[FeedRead], now: datetime) -> list[IncidentFact]:
        limit = timedelta(seconds=self._settings.alert_feed_stale_after_seconds)
        return [
            IncidentFact(
                kind=AlertKind.FEED_STALE,
                subject=f"feed-stale:{feed.feed}",
                owner=INTEGRATION_SUPPORT,
                title=f"{feed.feed} has not been read since {feed.read_at:%Y-%m-%d %H:%M} UTC "
                f"(limit {int(limit.total_seconds() // 60)} min)",
                detail={
                    "feed": feed.feed,
                    "last_read_at": feed.read_at.isoformat(timespec="seconds"),
                    "last_event_at": feed.last_event_at.isoformat(timespec="seconds")
                    if feed.last_event_at
                    else None,
                },
            )
            for feed in feeds
            if now - feed.read_at > limit
        ]

    async def _overdue_approvals(self) -> list[IncidentFact]:
        stages = ", ".join(f"'{stage}'" for stage in OVERDUE_STAGES)
        query = (
            f"WorkflowType = '{TIME_TO_BILLING}' AND ExecutionStatus = 'Running' "
            f"AND TaskQueue = '{self._settings.task_queue}' AND SyncStage IN ({stages})"
        )
        runs = [run async for run in self._client.list_workflows(query, limit=APPROVALS_SCANNED)]
        gate = asyncio.Semaphore(QUERY_CONCURRENCY)

        async def total(workflow_id: str) -> str | None:
            # The amount makes the alert readable; without it (worker busy, older run) it is still sent.
            async with gate:
                try:
                    status = await asyncio.wait_for(
                        self._client.get_workflow_handle(workflow_id).query(
                            "status", result_type=TimeToBillingStatus
                        ),
                        QUERY_TIMEOUT_SECONDS,
                    )
                except Exception:
                    return None
            return str(status.total) if status.total is not None else None

        # A worker that is down answers no query: past the budget the rest go without an amount.
        tasks = [asyncio.ensure_future(total(run.id)) for run in runs]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=QUERIES_BUDGET_SECONDS)
            for task in late:
                task.cancel()
        totals = [task.result() if task.done() and not task.cancelled() else None for task in tasks]
        facts = []
        for run, amount in zip(runs, totals, strict=True):
            project = run.typed_search_attributes.get(sa.PROJECT_ID) or "?"
            period = run.typed_search_attributes.get(sa.BILLING_PERIOD) or "?"
            stage = run.typed_search_attributes.get(sa.SYNC_STAGE) or ""
            of = f" of {amount}" if amount else ""
            facts.append(
                IncidentFact(
                    kind=AlertKind.APPROVAL_OVERDUE,
                    subject=f"approval-overdue:{run.id}",
                    owner=FINANCE,
                    title=f"invoice{of} for project {project} ({period}) is still waiting for approval "
                    f"past its reminder deadline"
                    + (" and has been escalated" if stage == "approval_escalated" else ""),
                    detail={
                        "workflow_id": run.id,
                        "project_id": project,
                        "period": period,
                        "total": amount,
                        "stage": stage,
                    },
                )
            )
        return facts

    # --- the outcome of a send -----------------------------------------------------------------------------

    def _sent(self, ids: list[int]) -> None:
        with self._db.session() as session:
            deliveries_sent(session, delivery_ids=ids)

    def _failed(self, ids: list[int], error: str, retry_at: datetime) -> None:
        with self._db.session() as session:
            deliveries_failed(session, delivery_ids=ids, error=error, retry_at=retry_at)

    def _cancel(self, ids: list[int], reason: str) -> None:
        with self._db.session() as session:
            cancel_deliveries(session, delivery_ids=ids, reason=reason)


def _count(channel: ChannelName, items: list[QueuedNotification], *, sent: bool) -> None:
    for phase in AlertPhase:
        count = sum(1 for item in items if item.phase == phase)
        if count:
            metrics.alert_notification(channel.kind, phase.value, sent=sent, count=count)
