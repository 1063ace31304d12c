"""A run's status as Temporal records it: its state, its stage, and the calls it is waiting on.

Temporal's own description of the run (`describe()`: every pending activity with its attempt, last failure
and timing) is the record, so a run retrying a vendor call for minutes says which call, on which attempt,
since when and why. The stage comes from the run's own query where its workflow has one, else from its
SyncStage search attribute.

`GET /runs/{workflow_id}/status` serves it as JSON to whoever may read the ops page; the ops page gathers
the same facts with the same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel, ConfigDict
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.api.failure.v1 import Failure
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import Client, WorkflowExecutionDescription
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from ingress.viewers import page_reader
from runs import search_attributes as sa
from workflows.exceptions import ExceptionAction
from workflows.invoice_to_cash import InvoiceToCash
from workflows.opportunity_to_project import OpportunityToProject
from workflows.reconciliation import Reconciliation
from workflows.reference_sync import ReferenceSync
from workflows.time_to_billing import TimeToBilling

log = structlog.get_logger("ingress.run_status")

router = APIRouter()

# The query that tells each workflow's stage: a status model with a `stage`, or the stage itself.
STAGE_QUERIES: dict[str, Callable[..., Any]] = {
    OpportunityToProject.__name__: OpportunityToProject.status,
    TimeToBilling.__name__: TimeToBilling.status,
    InvoiceToCash.__name__: InvoiceToCash.status,
    ExceptionAction.__name__: ExceptionAction.status,
    Reconciliation.__name__: Reconciliation.stage,
    ReferenceSync.__name__: ReferenceSync.stage,
}
# A status page must answer even when a run's worker does not (a query needs one).
QUERY_TIMEOUT = timedelta(seconds=3)
DESCRIBE_TIMEOUT = timedelta(seconds=10)
# Temporal's default limit on a workflow id.
MAX_WORKFLOW_ID = 1000
ERROR_SHOWN = 500


class RunNotFound(Exception):
    pass


class PendingCall(BaseModel):
    """One activity the run is waiting on, as Temporal describes it."""

    model_config = ConfigDict(frozen=True)
    activity_id: str
    activity_type: str
    # scheduled, started, cancel_requested, paused, pause_requested
    state: str
    attempt: int
    # None: retried until the activity's schedule-to-close timeout.
    maximum_attempts: int | None
    first_scheduled_at: datetime | None
    last_started_at: datetime | None
    last_attempt_completed_at: datetime | None
    next_attempt_at: datetime | None
    last_failure: str | None
    last_failure_type: str | None
    # The vendor and its status code, when the last failure was a vendor's.
    vendor: str | None
    status_code: int | None

    @property
    def retrying(self) -> bool:
        return self.attempt >= 2


class RunStatus(BaseModel):
    model_config = ConfigDict(frozen=True)
    workflow_id: str
    run_id: str
    workflow_type: str
    # Temporal's execution status: RUNNING, COMPLETED, FAILED, CANCELED, TERMINATED, TIMED_OUT, ...
    status: str
    started_at: datetime | None
    closed_at: datetime | None
    stage: str | None
    stage_from: Literal["query", "search_attribute"] | None
    pending_activities: list[PendingCall]
    # One line per pending activity past its first attempt, as the ops page shows it.
    retrying: list[str]


# --- gathering ------------------------------------------------------------------------------------------


async def describe_run(client: Client, workflow_id: str) -> RunStatus:
    """The latest run under `workflow_id`; RunNotFound when there is none."""
    try:
        description = await client.get_workflow_handle(workflow_id).describe(rpc_timeout=DESCRIBE_TIMEOUT)
    except RPCError as error:
        if error.status in (RPCStatusCode.NOT_FOUND, RPCStatusCode.INVALID_ARGUMENT):
            raise RunNotFound(f"no run with workflow id {workflow_id!r}") from error
        raise
    calls = await pending_calls(client, description)
    stage, stage_from = await _stage(client, description)
    return RunStatus(
        workflow_id=description.id,
        run_id=description.run_id,
        workflow_type=description.workflow_type,
        status=description.status.name if description.status is not None else "UNKNOWN",
        started_at=description.start_time,
        closed_at=description.close_time,
        stage=stage,
        stage_from=stage_from,
        pending_activities=calls,
        retrying=[retrying_text(call) for call in calls if call.retrying],
    )


async def pending_calls(client: Client, description: WorkflowExecutionDescription) -> list[PendingCall]:
    return [
        await _pending_call(client, pending) for pending in description.raw_description.pending_activities
    ]


def retrying_text(call: PendingCall) -> str:
    since = f" since {call.first_scheduled_at:%H:%M} UTC" if call.first_scheduled_at else ""
    error = f": {call.last_failure}" if call.last_failure else ""
    return f"retrying {call.activity_type} (attempt {call.attempt}{since}){error}"


async def _pending_call(client: Client, pending: PendingActivityInfo) -> PendingCall:
    failure = pending.last_failure if pending.HasField("last_failure") else None
    vendor, status_code = await _vendor_of(client, failure) if failure is not None else (None, None)
    error_type = None
    if failure is not None and failure.HasField("application_failure_info"):
        error_type = failure.application_failure_info.type or None
    return PendingCall(
        activity_id=pending.activity_id,
        activity_type=pending.activity_type.name,
        state=PendingActivityState.Name(pending.state).removeprefix("PENDING_ACTIVITY_STATE_").lower(),
        attempt=pending.attempt,
        maximum_attempts=pending.maximum_attempts or None,
        first_scheduled_at=_first_scheduled(pending),
        last_started_at=_time(pending, "last_started_time"),
        last_attempt_completed_at=_time(pending, "last_attempt_complete_time"),
        next_attempt_at=_time(pending, "next_attempt_schedule_time"),
        last_failure=failure.message[:ERROR_SHOWN] if failure is not None and failure.message else None,
        last_failure_type=error_type,
        vendor=vendor,
        status_code=status_code,
    )


def _time(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC) if stamp.seconds or stamp.nanos else None


def _first_scheduled(pending: PendingActivityInfo) -> datetime | None:
    """When the activity was first scheduled: Temporal keeps only when its retries expire, and how long after
    the first schedule that is."""
    expires = _time(pending, "expiration_time")
    options = pending.activity_options
    if expires is None or not pending.HasField("activity_options"):
        return None
    if not options.HasField("schedule_to_close_timeout"):
        return None
    return expires - options.schedule_to_close_timeout.ToTimedelta()


async def _vendor_of(client: Client, failure: Failure) -> tuple[str | None, int | None]:
    """The vendor and status code an activity's failure details carry (encrypted: decoded by the codec)."""
    copy = Failure()
    copy.CopyFrom(failure)
    try:
        error = await client.data_converter.decode_failure(copy)
    except Exception as problem:  # an undecodable failure still shows its message
        log.info("failure_details_unreadable", error=f"{type(problem).__name__}: {problem}")
        return None, None
    if not isinstance(error, ApplicationError) or not error.details:
        return None, None
    details = error.details[0]
    if not isinstance(details, dict):
        return None, None
    vendor, status = details.get("system"), details.get("status_code")
    return (
        vendor if isinstance(vendor, str) else None,
        status if isinstance(status, int) and not isinstance(status, bool) else None,
    )


async def _stage(
    client: Client, description: WorkflowExecutionDescription
) -> tuple[str | None, Literal["query", "search_attribute"] | None]:
    query = STAGE_QUERIES.get(description.workflow_type)
    if query is not None and description.status is not None and description.status.name == "RUNNING":
        handle = client.get_workflow_handle(description.id, run_id=description.run_id)
        try:
            answer = await handle.query(query, rpc_timeout=QUERY_TIMEOUT)
        except Exception as error:  # no worker, or a worker that does not answer: the search attribute says
            log.info("stage_query_unanswered", workflow_id=description.id, error=f"{type(error).__name__}")
        else:
            stage = answer if isinstance(answer, str) else getattr(answer, "stage", None)
            if isinstance(stage, str):
                return stage, "query"
    indexed = description.typed_search_attributes.get(sa.SYNC_STAGE)
    return (indexed, "search_attribute") if indexed else (None, None)


# --- the endpoint ---------------------------------------------------------------------------------------


@router.get(
    "/runs/{workflow_id:path}/status",
    response_model=RunStatus,
    responses={
        404: {"description": "no run with that workflow id"},
        422: {"description": "not a workflow id"},
        503: {"description": "Temporal unavailable; retry after Retry-After"},
    },
)
async def run_status(workflow_id: str, request: Request, _: str = Depends(page_reader)) -> RunStatus:
    """A run's status, stage and the activities it waits on, each with its attempt and last error."""
    if not workflow_id.strip() or len(workflow_id) > MAX_WORKFLOW_ID or not workflow_id.isprintable():
        raise HTTPException(422, f"not a workflow id: printable text of 1 to {MAX_WORKFLOW_ID} characters")
    try:
        return await describe_run(request.app.state.temporal, workflow_id)
    except RunNotFound as missing:
        raise HTTPException(404, str(missing)) from None
