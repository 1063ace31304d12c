"""Business health at a glance, as data: what the health page shows, served as JSON at `GET /health/facts`.

- Approved work not yet billed, live from the running billing runs (each run's status query), not only as
  the last reconciliation found it: per run its stage and, once rated, its invoice total; totals by currency.
- Invoices awaiting finance's approval and awaiting their posting, with amounts.
- Billing latency, finance's approval to the invoice posted, p50 and p95 over a window (the runs' audit).
- Data freshness per feed: when each poller last read its feed, and the newest event it read.
- Posting success rate over the window: invoices posted against refusals a person had to look at.
- Exceptions waiting, by owner and age.

`gather_health` is what a page calls; it reads the ledger and Temporal, and a Temporal that does not answer
leaves the ledger's half standing, saying so.
"""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from temporalio.client import Client

from config import Settings
from ingress.auth import require_identity
from ingress.exceptions_api import ledger, temporal_link
from ingress.identity import Identity
from ledger.business_facts import approval_to_posting, posting_refusals_since, postings_since
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.exception_queue import exception_counts_by_owner, list_exceptions
from ledger.feed_state import feed_reads
from ledger.vocab import ExceptionStatus
from runs import search_attributes as sa
from runs.time_to_billing import WORKFLOW_TYPE, TimeToBillingStatus

router = APIRouter()

# Everyone who may look at the firm's billing: reading changes nothing.
HEALTH_READERS = ("viewer", "finance", "ops", "pmo", "sales_ops")

COLLECTING = ("starting", "waiting_for_period_close", "settling", "collecting", "deferred", "blocked")
AWAITING_APPROVAL = ("awaiting_approval", "approval_reminded", "approval_escalated")
AWAITING_POSTING = ("posting", "posting_rejected")
# Once posted, the work is billed in the ERP, whether or not the PSA has been marked yet.
NOT_YET_BILLED = (*COLLECTING, *AWAITING_APPROVAL, *AWAITING_POSTING)
RUNS_READ = 500
QUERY_CONCURRENCY = 8
QUERY_TIMEOUT_SECONDS = 5.0
QUERIES_BUDGET_SECONDS = 15.0
WAITING_READ = 5000
AGE_BANDS: tuple[tuple[str, timedelta], ...] = (
    ("under_1h", timedelta(hours=1)),
    ("1h_to_1d", timedelta(days=1)),
    ("1d_to_7d", timedelta(days=7)),
)
OLDER = "over_7d"


class _Fact(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunAmount(_Fact):
    workflow_id: str
    stage: str
    project_id: str
    period: str
    legal_entity: str
    # The invoice total once the run has rated the period; None before (or when the run did not answer).
    total: Decimal | None
    currency: str | None
    entries_rated: int | None
    running_since: datetime | None
    temporal_url: str | None


class CurrencyTotal(_Fact):
    currency: str
    amount: Decimal
    runs: int


class RunGroup(_Fact):
    runs: list[RunAmount]
    totals: list[CurrencyTotal]
    # Runs with no total yet: still collecting the period, or not answering their status query.
    runs_without_total: int

    @classmethod
    def of(cls, runs: list[RunAmount]) -> RunGroup:
        sums: dict[str, tuple[Decimal, int]] = defaultdict(lambda: (Decimal(0), 0))
        for run in runs:
            if run.total is not None and run.currency is not None:
                amount, count = sums[run.currency]
                sums[run.currency] = (amount + run.total, count + 1)
        return cls(
            runs=runs,
            totals=[
                CurrencyTotal(currency=currency, amount=amount, runs=count)
                for currency, (amount, count) in sorted(sums.items())
            ],
            runs_without_total=sum(1 for run in runs if run.total is None),
        )


class Latency(_Fact):
    window_days: int
    samples: int
    p50_seconds: float | None
    p95_seconds: float | None


class FeedFreshness(_Fact):
    feed: str
    last_read_at: datetime
    read_age_seconds: float
    last_event_at: datetime | None
    event_age_seconds: float | None
    events_read: int
    stale: bool


class PostingRate(_Fact):
    window_days: int
    posted: int
    refused: int
    # posted / (posted + refused); None when nothing was attempted in the window.
    success_rate: float | None


class OwnerQueue(_Fact):
    owner: str
    open: int
    retrying: int
    oldest_waiting_seconds: float | None
    # Waiting items by how long they have waited: under_1h, 1h_to_1d, 1d_to_7d, over_7d.
    by_age: dict[str, int]


class HealthFacts(_Fact):
    as_of: datetime
    approved_not_billed: RunGroup
    awaiting_approval: RunGroup
    awaiting_posting: RunGroup
    billing_latency: Latency
    feeds: list[FeedFreshness]
    posting: PostingRate
    exceptions: list[OwnerQueue]
    # Why the runs' half is empty, when Temporal did not answer.
    temporal_error: str | None = None


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least `fraction` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    rank = min(max(math.ceil(fraction * len(ordered)), 1), len(ordered))
    return ordered[rank - 1]


def _ledger_facts(
    database: Database, settings: Settings, now: datetime, window: timedelta
) -> tuple[Latency, list[FeedFreshness], PostingRate, list[OwnerQueue]]:
    since = now - window
    stale_after = timedelta(seconds=settings.alert_feed_stale_after_seconds)
    with database.session(read_only=True) as session:
        latencies = [delta.total_seconds() for delta in approval_to_posting(session, since=since)]
        feeds = feed_reads(session)
        posted = postings_since(session, since=since)
        refused = posting_refusals_since(session, since=since)
        summaries = exception_counts_by_owner(session)
        waiting = [
            item
            for status in (ExceptionStatus.OPEN, ExceptionStatus.RETRYING)
            for item in list_exceptions(session, status=status, limit=WAITING_READ)
        ]
    bands: dict[str, dict[str, int]] = {
        owner.value: dict.fromkeys([*(name for name, _ in AGE_BANDS), OLDER], 0) for owner in summaries
    }
    for item in waiting:
        age = item.age(now)
        band = next((name for name, limit in AGE_BANDS if age < limit), OLDER)
        bands[item.owner.value][band] += 1
    days = int(window.total_seconds() // 86400)
    attempted = posted + refused
    return (
        Latency(
            window_days=days,
            samples=len(latencies),
            p50_seconds=percentile(latencies, 0.5),
            p95_seconds=percentile(latencies, 0.95),
        ),
        [
            FeedFreshness(
                feed=feed.feed,
                last_read_at=feed.read_at,
                read_age_seconds=max((now - feed.read_at).total_seconds(), 0.0),
                last_event_at=feed.last_event_at,
                event_age_seconds=max((now - feed.last_event_at).total_seconds(), 0.0)
                if feed.last_event_at
                else None,
                events_read=feed.events_read,
                stale=now - feed.read_at > stale_after,
            )
            for feed in feeds
        ],
        PostingRate(
            window_days=days,
            posted=posted,
            refused=refused,
            success_rate=posted / attempted if attempted else None,
        ),
        [
            OwnerQueue(
                owner=owner.value,
                open=summary.by_status[ExceptionStatus.OPEN],
                retrying=summary.by_status[ExceptionStatus.RETRYING],
                oldest_waiting_seconds=(now - summary.oldest_waiting_since).total_seconds()
                if summary.oldest_waiting_since
                else None,
                by_age=bands[owner.value],
            )
            for owner, summary in sorted(summaries.items())
        ],
    )


async def billing_runs(client: Client, settings: Settings, stages: tuple[str, ...]) -> list[RunAmount]:
    """Running billing runs in `stages`, each with what its status query says it will invoice."""
    quoted = ", ".join(f"'{stage}'" for stage in stages)
    query = (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{settings.task_queue}' AND SyncStage IN ({quoted})"
    )
    listed = [run async for run in client.list_workflows(query, limit=RUNS_READ)]
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def status(workflow_id: str) -> TimeToBillingStatus | None:
        async with gate:
            try:
                return await asyncio.wait_for(
                    client.get_workflow_handle(workflow_id).query("status", result_type=TimeToBillingStatus),
                    QUERY_TIMEOUT_SECONDS,
                )
            except Exception:
                return None

    # A worker that is down answers no query: past the budget the rest go without a total.
    tasks = [asyncio.ensure_future(status(run.id)) for run in listed]
    if tasks:
        _, late = await asyncio.wait(tasks, timeout=QUERIES_BUDGET_SECONDS)
        for task in late:
            task.cancel()
    statuses = [task.result() if task.done() and not task.cancelled() else None for task in tasks]
    runs = []
    for run, answer in zip(listed, statuses, strict=True):
        attributes = run.typed_search_attributes
        total = answer.total if answer is not None else None
        runs.append(
            RunAmount(
                workflow_id=run.id,
                stage=(answer.stage if answer else None) or attributes.get(sa.SYNC_STAGE) or "",
                project_id=attributes.get(sa.PROJECT_ID) or "",
                period=attributes.get(sa.BILLING_PERIOD) or "",
                legal_entity=attributes.get(sa.LEGAL_ENTITY) or "",
                total=total.amount if total is not None else None,
                currency=total.currency if total is not None else None,
                entries_rated=answer.entries_rated if answer is not None else None,
                running_since=run.start_time,
                temporal_url=temporal_link(settings, run.id),
            )
        )
    runs.sort(key=lambda run: (run.running_since is None, run.running_since))
    return runs


async def gather_health(
    database: Database, client: Client, settings: Settings, *, window: timedelta = timedelta(days=30)
) -> HealthFacts:
    now = utc_now()
    latency, feeds, posting, exceptions = await asyncio.to_thread(
        _ledger_facts, database, settings, now, window
    )
    runs: list[RunAmount] = []
    temporal_error = None
    try:
        runs = await billing_runs(client, settings, NOT_YET_BILLED)
    except Exception as error:  # the ledger's half still stands when Temporal is down
        temporal_error = f"{type(error).__name__}: {error}"[:500]
    return HealthFacts(
        as_of=now,
        approved_not_billed=RunGroup.of(runs),
        awaiting_approval=RunGroup.of([run for run in runs if run.stage in AWAITING_APPROVAL]),
        awaiting_posting=RunGroup.of([run for run in runs if run.stage in AWAITING_POSTING]),
        billing_latency=latency,
        feeds=feeds,
        posting=posting,
        exceptions=exceptions,
        temporal_error=temporal_error,
    )


@router.get("/health/facts", response_model=HealthFacts)
async def health_facts(
    request: Request,
    window_days: int = Query(default=30, ge=1, le=366),
    database: Database = Depends(ledger),
    _: Identity = Depends(require_identity(*HEALTH_READERS)),
) -> HealthFacts:
    """Unbilled work, invoices waiting, billing latency, feed freshness, posting rate, exceptions by age."""
    return await gather_health(
        database, request.app.state.temporal, request.app.state.settings, window=timedelta(days=window_days)
    )
