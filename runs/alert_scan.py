"""What an AlertScan run takes and gives: one look for new and cleared incidents, and the notifications sent.

Started by its Temporal Schedule (`runs.schedules`) every `alert_scan_interval_seconds`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

WORKFLOW_TYPE = "AlertScan"


class AlertScanInput(BaseModel):
    model_config = ConfigDict(frozen=True)


class AlertScanResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    opened: int
    cleared: int
    ongoing: int
    # Kinds the scan could not look at this time (their source did not answer): their incidents stand.
    unseen_kinds: tuple[str, ...] = ()
    notifications_sent: int
    notifications_failed: int
