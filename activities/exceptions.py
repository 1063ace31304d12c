"""The exception activities: load an item, apply a person's fix, retry its process, and settle the outcome.

What "fix" and "retry" mean for each process is `activities.exception_actions`; its names stay importable
from here, where the ingress and the worker look for them.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.exception_actions import (
    PROCESS_ACTIONS,
    SYSTEM_ACTOR,
    InvalidCorrection,
    ProcessActions,
    RetryContext,
    RetryOutcome,
    RetryRequest,
    RetryState,
    UnknownProcess,
    actions_for,
    validate_correction,
)
from activities.ledger import RaiseExceptionInput
from ledger.database import Database
from ledger.records import ExceptionItem
from ledger.repository import (
    act_on_exception,
    get_exception,
    get_exception_by_dedupe_key,
    list_exceptions,
    open_exception,
    reopen_exception,
)
from ledger.vocab import ExceptionStatus

__all__ = [
    "PROCESS_ACTIONS",
    "SYSTEM_ACTOR",
    "ApplyFixInput",
    "ApplyFixResult",
    "CloseExceptionInput",
    "CloseExceptionResult",
    "ExceptionActivities",
    "InvalidCorrection",
    "LoadExceptionInput",
    "LoadExceptionResult",
    "ProcessActions",
    "RecordFindingsInput",
    "RecordFindingsResult",
    "RetryContext",
    "RetryOutcome",
    "RetryProcessInput",
    "RetryProcessResult",
    "RetryProgressInput",
    "RetryProgressResult",
    "RetryRequest",
    "RetryState",
    "UnknownProcess",
    "actions_for",
    "validate_correction",
]


class LoadExceptionInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int


class LoadExceptionResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    item: ExceptionItem


class ApplyFixInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int
    corrected_fields: dict[str, Any]


class ApplyFixResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int
    fields: list[str]


class RetryProcessInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int
    request: RetryRequest


class RetryProcessResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    outcome: RetryOutcome


class RetryProgressInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int
    workflow_id: str
    run_id: str | None


class RetryProgressResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_status: ExceptionStatus
    # The retried run's status name (RUNNING, COMPLETED, FAILED, ...), or None when it cannot be found.
    run_status: str | None


class CloseExceptionInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    exception_id: int
    # resolve: the retried process went through; reopen: it did not, `note` says why.
    outcome: Literal["resolve", "reopen"]
    note: str


class CloseExceptionResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: ExceptionStatus


class RecordFindingsInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    process: str
    # The check's scope: its earlier findings are the waiting items whose dedupe key starts with this.
    key_prefix: str
    findings: list[RaiseExceptionInput]
    # Said on the items resolved because the check no longer finds them.
    note: str


class RecordFindingsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    raised: list[int]
    resolved: list[int]
    # Findings a person had skipped: left skipped, or a daily check would re-open them every day.
    still_skipped: list[str]


class ExceptionActivities:
    """Retry and fix machinery; the Temporal client starts and signals the runs being retried."""

    def __init__(self, context: RetryContext, database: Database) -> None:
        self._ctx = context
        self._db = database

    def _item(self, exception_id: int) -> ExceptionItem:
        with self._db.session(read_only=True) as session:
            item = get_exception(session, exception_id=exception_id)
        if item is None:
            raise ApplicationError(f"no exception {exception_id}", type="NotFound", non_retryable=True)
        return item

    @activity.defn
    def load_exception(self, input: LoadExceptionInput) -> LoadExceptionResult:
        return LoadExceptionResult(item=self._item(input.exception_id))

    @activity.defn
    async def apply_exception_fix(self, input: ApplyFixInput) -> ApplyFixResult:
        item = await asyncio.to_thread(self._item, input.exception_id)
        actions = actions_for(item.process)
        try:
            fix = validate_correction(item.process, input.corrected_fields)
        except InvalidCorrection as error:
            raise ApplicationError(str(error), type="Rejected", non_retryable=True) from error
        assert actions.apply_fix is not None
        await actions.apply_fix(self._ctx, item, fix)
        return ApplyFixResult(exception_id=item.id, fields=sorted(fix.model_dump(exclude_none=True)))

    @activity.defn
    async def retry_exception_process(self, input: RetryProcessInput) -> RetryProcessResult:
        item = await asyncio.to_thread(self._item, input.exception_id)
        try:
            actions = actions_for(item.process)
        except UnknownProcess as error:
            raise ApplicationError(str(error), type="Unsupported", non_retryable=True) from error
        return RetryProcessResult(outcome=await actions.retry(self._ctx, item, input.request))

    @activity.defn
    async def retry_progress(self, input: RetryProgressInput) -> RetryProgressResult:
        item = await asyncio.to_thread(self._item, input.exception_id)
        try:
            description = await self._ctx.client.get_workflow_handle(
                input.workflow_id, run_id=input.run_id
            ).describe()
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return RetryProgressResult(exception_status=item.status, run_status=None)
        status = description.status.name if description.status is not None else None
        return RetryProgressResult(exception_status=item.status, run_status=status)

    @activity.defn
    def close_exception(self, input: CloseExceptionInput) -> CloseExceptionResult:
        """Resolve or re-open an item still `retrying`; one a person or the process moved on is left alone."""
        with self._db.session() as session:
            item = get_exception(session, exception_id=input.exception_id)
            if item is None or item.status != ExceptionStatus.RETRYING:
                return CloseExceptionResult(status=item.status if item else ExceptionStatus.RESOLVED)
            if input.outcome == "resolve":
                item = act_on_exception(
                    session,
                    exception_id=input.exception_id,
                    action="resolve",
                    actor=SYSTEM_ACTOR,
                    note=input.note,
                )
            else:
                item = reopen_exception(session, exception_id=input.exception_id, note=input.note)
        return CloseExceptionResult(status=item.status)

    @activity.defn
    def record_findings(self, input: RecordFindingsInput) -> RecordFindingsResult:
        """A periodic check's findings: raise each (unless a person skipped it), resolve what has gone."""
        info = activity.info()
        found = {finding.dedupe_key for finding in input.findings}
        raised: list[int] = []
        resolved: list[int] = []
        skipped: list[str] = []
        with self._db.session() as session:
            for finding in input.findings:
                known = get_exception_by_dedupe_key(session, dedupe_key=finding.dedupe_key)
                if known is not None and known.status == ExceptionStatus.SKIPPED:
                    skipped.append(finding.dedupe_key)
                    continue
                raised.append(
                    open_exception(
                        session,
                        dedupe_key=finding.dedupe_key,
                        process=finding.process,
                        owner=finding.owner.value,
                        reason=finding.reason,
                        record=finding.record,
                        workflow_id=info.workflow_id,
                        run_id=info.workflow_run_id,
                    ).id
                )
            for status in (ExceptionStatus.OPEN, ExceptionStatus.RETRYING):
                for item in list_exceptions(session, process=input.process, status=status, limit=1000):
                    if item.dedupe_key.startswith(input.key_prefix) and item.dedupe_key not in found:
                        act_on_exception(
                            session,
                            exception_id=item.id,
                            action="resolve",
                            actor=SYSTEM_ACTOR,
                            note=input.note,
                        )
                        resolved.append(item.id)
        return RecordFindingsResult(raised=raised, resolved=resolved, still_skipped=skipped)
