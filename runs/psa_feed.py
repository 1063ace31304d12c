"""The messages of the PsaFeedPoller: its input, signal and status.

Kept out of the workflow module so that the sandbox, which re-imports that module for every run, does not
rebuild these pydantic models each time; they pass through as they are plain data.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from canonical import LegalEntity

WORKFLOW_TYPE = "PsaFeedPoller"


def workflow_id(psa: str) -> str:
    return f"psa-feed:{psa}"


class PsaFeedPollerInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    psa: str
    entities: tuple[LegalEntity, ...]
    poll_interval_seconds: float = 30.0
    billing_settle_seconds: int = 300
    invoice_poll_interval_seconds: int = 3600
    # The connector's opaque cursor, carried across continue-as-new.
    cursor: dict[str, Any] | None = None
    events_seen: int = 0
    billing_runs_nudged: int = 0


class PollNow(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str = "ops"


class PsaFeedPollerStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    polls: int
    events_seen: int
    billing_runs_nudged: int
    cursor: dict[str, Any] | None
    last_gap: str | None
    # True while it waits for the next poll, having read everything the feed held.
    waiting: bool = False
