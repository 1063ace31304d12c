"""AlertScan: one look for new and cleared incidents, then the notifications to the owning teams.

Started by a Temporal Schedule every `alert_scan_interval_seconds`, one at a time (a scan still running
when the next is due makes the next one pointless). Both steps are idempotent activities over the ledger,
so a retried step or a scan cut short only repeats work, never a notification already recorded as sent.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.alerts import AlertActivities, RecordAlertIncidentsInput, SendAlertsInput
    from runs.alert_scan import AlertScanInput, AlertScanResult
    from workflows.options import ActivityOptions

# A scan that cannot finish is replaced by the next one within minutes: retry briefly, never for hours.
SCAN_STEP = ActivityOptions(
    start_to_close_timeout=timedelta(minutes=2),
    retry_policy=RetryPolicy(
        initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30), maximum_attempts=5
    ),
)


@workflow.defn
class AlertScan:
    @workflow.run
    async def run(self, input: AlertScanInput) -> AlertScanResult:
        found = await workflow.execute_activity_method(
            AlertActivities.record_alert_incidents, RecordAlertIncidentsInput(), **SCAN_STEP
        )
        sent = await workflow.execute_activity_method(
            AlertActivities.send_alerts, SendAlertsInput(), **SCAN_STEP
        )
        return AlertScanResult(
            opened=found.opened,
            cleared=found.cleared,
            ongoing=found.ongoing,
            unseen_kinds=found.unseen_kinds,
            notifications_sent=sent.sent,
            notifications_failed=sent.failed,
        )
