"""The ingress's `GET /metrics` (Prometheus text format): the business's state, read from the ledger at each
scrape, and this process's own resource use.

The workers serve the event series (runs started and completed, postings and posting failures, billing
latency, feed lag, exceptions opened and resolved, alert notifications) with the Temporal SDK's, on
`worker_metrics_address`; these are the gauges of durable state, the same whichever ingress replica
answers: exceptions waiting by owner and age, feed freshness, postings by state, open alert incidents and
queued notifications. With `metrics_token` set only Prometheus's bearer token is answered.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Iterator

from fastapi import APIRouter, Header, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from config import Settings
from ingress.exceptions_api import ledger
from ledger.alert_incidents import delivery_counts, open_incidents
from ledger.business_facts import posting_counts
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.exception_queue import exception_counts_by_owner
from ledger.feed_state import feed_reads
from ledger.vocab import ExceptionStatus

router = APIRouter()
_registry_lock = threading.Lock()


class LedgerState(Collector):
    """Gauges of what the ledger holds now, read on every scrape."""

    def __init__(self, database: Database) -> None:
        self._database = database

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("pssync_ledger_up", "1 when the ledger answered this scrape, else 0")
        try:
            families = list(self._read())
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        now = utc_now()
        with self._database.session(read_only=True) as session:
            summaries = exception_counts_by_owner(session)
            feeds = feed_reads(session)
            postings = posting_counts(session)
            incidents = open_incidents(session)
            deliveries = delivery_counts(session)
        by_status = GaugeMetricFamily(
            "pssync_exceptions", "Exceptions in the queue by owner and status", labels=["owner", "status"]
        )
        waiting = GaugeMetricFamily(
            "pssync_exceptions_waiting",
            "Exceptions waiting for a person (open or retrying)",
            labels=["owner"],
        )
        oldest = GaugeMetricFamily(
            "pssync_exceptions_oldest_waiting_age_seconds",
            "How long the oldest waiting exception has waited",
            labels=["owner"],
        )
        for owner, summary in sorted(summaries.items()):
            for status in ExceptionStatus:
                by_status.add_metric([owner.value, status.value], summary.by_status[status])
            waiting.add_metric([owner.value], summary.waiting)
            age = (
                (now - summary.oldest_waiting_since).total_seconds() if summary.oldest_waiting_since else 0.0
            )
            oldest.add_metric([owner.value], age)
        yield from (by_status, waiting, oldest)
        read_age = GaugeMetricFamily(
            "pssync_feed_read_age_seconds", "Time since the feed last answered a read", labels=["feed"]
        )
        event_age = GaugeMetricFamily(
            "pssync_feed_last_event_age_seconds",
            "Age of the newest event read from the feed",
            labels=["feed"],
        )
        for feed in feeds:
            read_age.add_metric([feed.feed], max((now - feed.read_at).total_seconds(), 0.0))
            if feed.last_event_at is not None:
                event_age.add_metric([feed.feed], max((now - feed.last_event_at).total_seconds(), 0.0))
        yield from (read_age, event_age)
        posting = GaugeMetricFamily(
            "pssync_postings",
            "Invoices the ledger records as posted, by ERP and state",
            labels=["erp", "state"],
        )
        for (erp, state), count in sorted(postings.items()):
            posting.add_metric([erp, state], count)
        yield posting
        open_by: dict[tuple[str, str], int] = {}
        for incident in incidents:
            key = (incident.kind.value, incident.owner)
            open_by[key] = open_by.get(key, 0) + 1
        incident_family = GaugeMetricFamily(
            "pssync_alert_incidents_open", "Incidents open, by kind and owning team", labels=["kind", "owner"]
        )
        for (kind, team), count in sorted(open_by.items()):
            incident_family.add_metric([kind, team], count)
        yield incident_family
        notifications = GaugeMetricFamily(
            "pssync_alert_deliveries",
            "Incident notifications by channel and state (failing: queued after a failed send)",
            labels=["channel", "state"],
        )
        for (channel, state), count in sorted(deliveries.items()):
            notifications.add_metric([channel, state], count)
        yield notifications


def registry_for(request: Request, database: Database) -> CollectorRegistry:
    """One registry per app (tests build many apps in one process), made on the first scrape."""
    state = request.app.state
    with _registry_lock:
        if getattr(state, "metrics_registry", None) is None:
            registry = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            registry.register(LedgerState(database))
            state.metrics_registry = registry
    registry_: CollectorRegistry = state.metrics_registry
    return registry_


def _check_token(settings: Settings, authorization: str | None) -> None:
    if settings.metrics_token is None:
        return
    expected = settings.metrics_token.get_secret_value().encode()
    given = (authorization or "").partition(" ")
    if given[0].lower() != "bearer" or not secrets.compare_digest(given[2].strip().encode(), expected):
        raise HTTPException(401, "metrics need the scrape token", headers={"WWW-Authenticate": "Bearer"})


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, authorization: str | None = Header(default=None)) -> Response:
    _check_token(request.app.state.settings, authorization)
    registry = registry_for(request, ledger(request))
    # Collecting reads the ledger: off the event loop.
    body = await asyncio.to_thread(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
