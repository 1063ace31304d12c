"""ps-sync's business metrics, recorded where the facts happen, through the Temporal SDK's metric meter.

One registry and one endpoint per worker process: the SDK's runtime exports its own series and these on the
same Prometheus endpoint (`runtime_with_metrics`). The meter is the SDK's because only its workflow meter
counts a run's completion replay-safely (nothing is recorded while a history replays); recording activity
facts through the same meter keeps every worker series on one scrape target, aggregated by the SDK's core
off the Python event loop. In an activity the meter carries namespace, task queue, activity and workflow
type; in a workflow, namespace, task queue and workflow type. Outside both (a unit test calling a function
directly) nothing is recorded.

Counters are exported with the `_total` suffix, durations and latencies in seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from temporalio import activity, workflow
from temporalio.common import MetricMeter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

RUNS_STARTED = "pssync_runs_started"
RUNS_COMPLETED = "pssync_runs_completed"
INVOICES_POSTED = "pssync_invoices_posted"
POSTING_FAILURES = "pssync_posting_failures"
EXCEPTIONS_OPENED = "pssync_exceptions_opened"
EXCEPTIONS_RESOLVED = "pssync_exceptions_resolved"
BILLING_LATENCY = "pssync_billing_latency_seconds"
FEED_LAG = "pssync_feed_lag_seconds"
FEED_EVENTS_READ = "pssync_feed_events_read"
FEED_LAST_READ = "pssync_feed_last_read_timestamp_seconds"
FEED_LAST_EVENT = "pssync_feed_last_event_timestamp_seconds"
ALERT_INCIDENTS_OPENED = "pssync_alert_incidents_opened"
ALERT_INCIDENTS_CLEARED = "pssync_alert_incidents_cleared"
ALERT_NOTIFICATIONS = "pssync_alert_notifications"

_MINUTE, _HOUR, _DAY = 60.0, 3600.0, 86400.0
# Approval to posting is minutes when finance is at their desk and days when not: buckets up to two weeks.
# Feed lag is seconds when the poller keeps up and hours after downtime.
BUCKETS: Mapping[str, Sequence[float]] = {
    BILLING_LATENCY: (
        10,
        _MINUTE,
        5 * _MINUTE,
        15 * _MINUTE,
        _HOUR,
        4 * _HOUR,
        8 * _HOUR,
        _DAY,
        2 * _DAY,
        3 * _DAY,
        5 * _DAY,
        7 * _DAY,
        14 * _DAY,
    ),
    FEED_LAG: (1, 5, 15, 30, _MINUTE, 2 * _MINUTE, 5 * _MINUTE, 15 * _MINUTE, _HOUR, 4 * _HOUR, _DAY),
}


def runtime_with_metrics(bind_address: str) -> Runtime:
    """A Temporal runtime serving Prometheus metrics at http://{bind_address}/metrics: the SDK's own
    (workflow and activity task latencies, polls, slots, sticky cache) and ps-sync's business series."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=bind_address,
                counters_total_suffix=True,
                durations_as_seconds=True,
                histogram_bucket_overrides=BUCKETS,
            )
        )
    )


def _meter() -> MetricMeter:
    if activity.in_activity():
        return activity.metric_meter()
    if workflow.in_workflow():
        return workflow.metric_meter()
    return MetricMeter.noop


def _count(name: str, description: str, attributes: Mapping[str, str | int | float | bool]) -> None:
    _meter().create_counter(name, description).add(1, dict(attributes))


# --- runs: from a workflow (observability.run_metrics) ------------------------------------------------------


def run_started() -> None:
    _count(RUNS_STARTED, "Business runs started (a continue-as-new is the same run)", {})


def run_completed(outcome: str) -> None:
    _count(
        RUNS_COMPLETED, "Business runs ended, by outcome (completed, failed, cancelled)", {"outcome": outcome}
    )


# --- billing: from activities -------------------------------------------------------------------------------


def invoice_posted(vendor: str, *, created: bool) -> None:
    outcome = "created" if created else "already_posted"
    _count(
        INVOICES_POSTED,
        "Invoices posted to an ERP (already_posted: found from an earlier attempt)",
        {
            "vendor": vendor,
            "outcome": outcome,
        },
    )


def posting_failed(vendor: str, *, error_type: str, retryable: bool) -> None:
    _count(
        POSTING_FAILURES,
        "Failed attempts to post an invoice, by ERP and error type",
        {
            "vendor": vendor,
            "error_type": error_type,
            "retryable": retryable,
        },
    )


def billing_latency(vendor: str, latency: timedelta) -> None:
    _meter().create_histogram_float(
        BILLING_LATENCY, "Time from finance's approval to the invoice posted in the ERP", "s"
    ).record(max(latency.total_seconds(), 0.0), {"vendor": vendor})


# --- feeds: from the pollers' activities --------------------------------------------------------------------


def feed_read(feed: str, *, read_at: datetime, event_times: Iterable[datetime]) -> None:
    """One successful read of a feed: how late each event was seen, and where the feed stands."""
    meter, attributes = _meter(), {"feed": feed}
    lag = meter.create_histogram_float(FEED_LAG, "Time from an event happening to ps-sync reading it", "s")
    newest: datetime | None = None
    events = 0
    for happened in event_times:
        events += 1
        lag.record(max((read_at - happened).total_seconds(), 0.0), attributes)
        newest = happened if newest is None or happened > newest else newest
    meter.create_counter(FEED_EVENTS_READ, "Events read from a feed").add(events, attributes)
    meter.create_gauge_float(FEED_LAST_READ, "When the feed last answered a read (Unix time)", "s").set(
        read_at.timestamp(), attributes
    )
    if newest is not None:
        meter.create_gauge_float(
            FEED_LAST_EVENT, "When the newest event read from the feed happened (Unix time)", "s"
        ).set(newest.timestamp(), attributes)


# --- exceptions and alerts: from the alert scan -------------------------------------------------------------


def exception_opened(owner: str) -> None:
    _count(EXCEPTIONS_OPENED, "Exceptions that started waiting for a person, by owner", {"owner": owner})


def exception_resolved(owner: str) -> None:
    _count(
        EXCEPTIONS_RESOLVED,
        "Exceptions that stopped waiting (resolved or skipped), by owner",
        {"owner": owner},
    )


def alert_incident_opened(kind: str, owner: str) -> None:
    _count(ALERT_INCIDENTS_OPENED, "Incidents teams are alerted to", {"kind": kind, "owner": owner})


def alert_incident_cleared(kind: str, owner: str) -> None:
    _count(ALERT_INCIDENTS_CLEARED, "Incidents that cleared", {"kind": kind, "owner": owner})


def alert_notification(channel_kind: str, phase: str, *, sent: bool, count: int = 1) -> None:
    _meter().create_counter(ALERT_NOTIFICATIONS, "Incident notifications by channel and outcome").add(
        count, {"channel": channel_kind, "phase": phase, "outcome": "sent" if sent else "failed"}
    )
