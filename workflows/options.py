"""Activity options shared by the workflows: how long a vendor call may take and how it is retried."""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from temporalio.common import RetryPolicy


class ActivityOptions(TypedDict, total=False):
    start_to_close_timeout: timedelta
    schedule_to_close_timeout: timedelta
    heartbeat_timeout: timedelta
    retry_policy: RetryPolicy


class LocalActivityOptions(TypedDict, total=False):
    start_to_close_timeout: timedelta
    retry_policy: RetryPolicy


# Vendor calls retry with back-off for hours: an ERP down over lunch must not lose an invoice.
# Permanent errors are raised non-retryable by the activities, so they stop at once.
VENDOR_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
)

VENDOR_CALL = ActivityOptions(
    start_to_close_timeout=timedelta(seconds=60),
    schedule_to_close_timeout=timedelta(hours=12),
    retry_policy=VENDOR_RETRY,
)

# Posting an invoice may queue behind the ERP's own concurrency limit for minutes; the activity heartbeats
# while it waits, so a lost worker is still noticed within a minute.
POSTING_CALL = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=30),
    heartbeat_timeout=timedelta(seconds=60),
    schedule_to_close_timeout=timedelta(hours=12),
    retry_policy=VENDOR_RETRY,
)

# Paging activities heartbeat after every page; a stalled one is retried from its last heartbeat.
PAGED_CALL = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=10),
    heartbeat_timeout=timedelta(seconds=60),
    schedule_to_close_timeout=timedelta(hours=12),
    retry_policy=VENDOR_RETRY,
)

LEDGER_CALL = LocalActivityOptions(
    start_to_close_timeout=timedelta(seconds=15),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=10)
    ),
)
