"""What an ExceptionAction run takes and answers, and its id: one run per claim of an exception item."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

WORKFLOW_TYPE = "ExceptionAction"

Outcome = Literal[
    "resolved",  # the retried run went through
    "raised_again",  # the process reported the same problem again: the item is open again
    "skipped_meanwhile",  # a person skipped it while the retry ran
    "fix_refused",  # the source system refused the corrected fields: the item is open again
    "retry_failed",  # the retry could not be made, or the retried run ended badly: the item is open again
    "still_running",  # the retried run had not finished when the follow-up window closed
]
FIRST_POLL = timedelta(seconds=1)
LONGEST_POLL = timedelta(minutes=5)


def workflow_id(dedupe_key: str, claimed_at: datetime) -> str:
    """One run per claim: the item's business key and the moment the person's action claimed it. Not the
    ledger id alone, which two ledgers (deployments, test runs) on one namespace would both use."""
    return f"exception-action:{dedupe_key}:{claimed_at.strftime('%Y%m%dT%H%M%S%f')}"


class ExceptionActionInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    exception_id: int
    action: Literal["retry", "fix"]
    actor: str
    note: str | None = None
    corrected_fields: dict[str, Any] | None = None
    # How long to follow the retried run before leaving the item to the process.
    follow_seconds: int = 24 * 3600


class ExceptionActionStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    exception_id: int
    retried_workflow_id: str | None = None
    outcome: Outcome | None = None


class ExceptionActionResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    exception_id: int
    outcome: Outcome
    retried_workflow_id: str | None = None
    retried_run_id: str | None = None
    detail: str
