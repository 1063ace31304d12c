"""The messages of the ErpPaymentPoller: its input, cursor and status (its `poll_now` signal takes the
PSA feed poller's PollNow).

Kept out of the workflow module so that the sandbox, which re-imports that module for every run, does not
rebuild these pydantic models each time; they pass through as they are plain data.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

WORKFLOW_TYPE = "ErpPaymentPoller"


def workflow_id(erp: str) -> str:
    return f"payment-feed:{erp}"


class PaymentCursor(BaseModel):
    """Where the next poll starts (the ERP's If-Modified-Since) and the payments already passed on that it
    will list again, because the window overlaps the last one."""

    model_config = ConfigDict(frozen=True)

    modified_since: datetime | None = None
    recent: tuple[str, ...] = ()


class ErpPaymentPollerInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    poll_interval_seconds: float = 30.0
    # Read again behind the last poll's start: a payment saved as the poll began, or a clock a little
    # behind the ERP's, is listed twice (and passed on once) rather than never.
    overlap_seconds: float = 120.0
    # The first poll after a fresh start reaches this far back, so a payment made while ps-sync was being
    # installed is not missed; a running poller carries its cursor across continue-as-new instead.
    first_lookback_seconds: float = 86_400.0
    cursor: PaymentCursor | None = None
    payments_seen: int = 0
    invoice_runs_nudged: int = 0


class ErpPaymentPollerStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    polls: int
    payments_seen: int
    invoice_runs_nudged: int
    cursor: PaymentCursor | None
