"""What "retry" and "fix" mean for each process, and the activities that do it.

`PROCESS_ACTIONS` is the dispatch table: one entry per process that raises exceptions. A new process plugs in
by adding its entry, saying which corrections a person may send (a pydantic model, or None) and how a
correction is applied and a retry is made:

- opportunity_to_project: a fix writes the corrected deal fields to the CRM; a retry signals the waiting run
  (`retry`), or starts the deal again when its run failed (compensated), finding what exists by crosswalk.
- time_to_billing: a rejected line (time entry or expense) is billed by the next run for its project and
  period, started once the current run has finished; any other item signals `retry` on the running run
  (a posting the ERP refused), or starts a new run when none is running.
- reconciliation, reference_sync: a retry runs the check again for the same scope; it settles (resolves)
  what is no longer different, or raises it again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from pssync.activities.errors import connector_errors
from pssync.activities.ledger import RaiseExceptionInput
from pssync.canonical import LegalEntity
from pssync.canonical.reference import OpportunityFix
from pssync.connectors.roles import CrmConnector, OpportunityEditor
from pssync.ledger.database import Database
from pssync.ledger.records import ExceptionItem
from pssync.ledger.repository import (
    act_on_exception,
    get_exception,
    get_exception_by_dedupe_key,
    list_exceptions,
    open_exception,
    reopen_exception,
)
from pssync.ledger.vocab import ExceptionStatus

RetryState = Literal["signalled", "started", "busy", "already_done"]
SYSTEM_ACTOR = "ps-sync"


class RetryRequest(BaseModel):
    """The `retry` signal's argument: who asked and why (the shape OpportunityToProject's signal takes)."""

    model_config = ConfigDict(frozen=True)
    actor: str
    note: str | None = None
    exception_id: int | None = None
    # The ExceptionAction run making the retry: what a re-run started for it is named after.
    action_workflow_id: str | None = None


class RetryOutcome(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: RetryState
    workflow_id: str
    run_id: str | None = None
    detail: str


@dataclass(frozen=True)
class RetryContext:
    """What a dispatch entry may use: the Temporal client, where workflows run, and the connectors."""

    client: Client
    task_queue: str
    entities: tuple[LegalEntity, ...]
    crm: CrmConnector
    psa: str
    billing_settle_seconds: int
    invoice_poll_interval_seconds: int


Fixer = Callable[[RetryContext, ExceptionItem, BaseModel], Awaitable[None]]
Retrier = Callable[[RetryContext, ExceptionItem, RetryRequest], Awaitable[RetryOutcome]]


@dataclass(frozen=True)
class ProcessActions:
    retry: Retrier
    # The corrections a person may send with "fix", validated before anything is recorded; None: no fix.
    fix_model: type[BaseModel] | None = None
    apply_fix: Fixer | None = None


class UnknownProcess(ValueError):
    pass


class InvalidCorrection(ValueError):
    def __init__(self, message: str, problems: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.problems = problems


# --- what each process does ---------------------------------------------------------------------------


async def _status(client: Client, workflow_id: str) -> tuple[WorkflowExecutionStatus | None, str | None]:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return None, None
        raise
    return description.status, description.run_id


async def _fix_opportunity(ctx: RetryContext, item: ExceptionItem, fix: BaseModel) -> None:
    if not isinstance(ctx.crm, OpportunityEditor):
        raise ApplicationError(
            f"the {ctx.crm.system} connector cannot correct opportunities",
            type="Unsupported",
            non_retryable=True,
        )
    assert isinstance(fix, OpportunityFix)
    async with connector_errors():
        await ctx.crm.correct_opportunity(str(item.record["opportunity_id"]), fix)


async def _retry_opportunity(ctx: RetryContext, item: ExceptionItem, request: RetryRequest) -> RetryOutcome:
    # Imported here: the workflow modules import this module's activities.
    from pssync.workflows.opportunity_to_project import (
        OpportunityToProject,
        OpportunityToProjectInput,
        workflow_id,
    )

    crm, opportunity_id = str(item.record["crm"]), str(item.record["opportunity_id"])
    wf_id = item.workflow_id or workflow_id(crm, opportunity_id)
    status, run_id = await _status(ctx.client, wf_id)
    if status == WorkflowExecutionStatus.RUNNING:
        await ctx.client.get_workflow_handle(wf_id).signal("retry", request)
        return RetryOutcome(state="signalled", workflow_id=wf_id, run_id=run_id, detail="signalled retry")
    if status == WorkflowExecutionStatus.COMPLETED:
        return RetryOutcome(
            state="already_done", workflow_id=wf_id, run_id=run_id, detail="the deal's run has completed"
        )
    handle = await ctx.client.start_workflow(
        OpportunityToProject.run,
        OpportunityToProjectInput(crm=crm, opportunity_id=opportunity_id, psa=ctx.psa, entities=ctx.entities),
        id=wf_id,
        task_queue=ctx.task_queue,
        # Only a failed (compensated) run may be followed by another: a completed deal is never redone.
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return RetryOutcome(
        state="started", workflow_id=wf_id, run_id=handle.result_run_id, detail="started the deal again"
    )


async def _start_billing(ctx: RetryContext, project_id: str, period: str) -> RetryOutcome:
    from pssync.workflows.time_to_billing import TimeToBilling, TimeToBillingInput, WorkApproved, workflow_id

    handle = await ctx.client.start_workflow(
        TimeToBilling.run,
        TimeToBillingInput(
            project_id=project_id,
            period=period,
            psa=ctx.psa,
            entities=ctx.entities,
            settle_seconds=ctx.billing_settle_seconds,
            invoice_poll_interval_seconds=ctx.invoice_poll_interval_seconds,
        ),
        id=workflow_id(project_id, period),
        task_queue=ctx.task_queue,
        start_signal="work_approved",
        start_signal_args=[WorkApproved(event_ids=())],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )
    return RetryOutcome(
        state="started",
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        detail=f"started the next billing run for {project_id} {period}",
    )


async def _retry_billing(ctx: RetryContext, item: ExceptionItem, request: RetryRequest) -> RetryOutcome:
    from pssync.workflows.time_to_billing import workflow_id

    project_id, period = str(item.record["project_id"]), str(item.record["period"])
    wf_id = workflow_id(project_id, period)
    status, run_id = await _status(ctx.client, wf_id)
    running = status == WorkflowExecutionStatus.RUNNING
    if item.record.get("kind") in ("time_entry", "expense"):
        # The running run has read its lines already: the fixed line goes on the next one.
        if running:
            return RetryOutcome(
                state="busy", workflow_id=wf_id, run_id=run_id, detail="waiting for the current billing run"
            )
        return await _start_billing(ctx, project_id, period)
    if running:
        await ctx.client.get_workflow_handle(wf_id).signal("retry", request)
        return RetryOutcome(state="signalled", workflow_id=wf_id, run_id=run_id, detail="signalled retry")
    return await _start_billing(ctx, project_id, period)


async def _rerun_reconciliation(
    ctx: RetryContext, item: ExceptionItem, request: RetryRequest
) -> RetryOutcome:
    from pssync.workflows.reconciliation import Reconciliation, ReconciliationInput

    entity, period = str(item.record["legal_entity"]), str(item.record["period"])
    wf_id = f"reconciliation:{period}:{entity}:{request.action_workflow_id or f'exception-{item.id}'}"
    handle = await ctx.client.start_workflow(
        Reconciliation.run,
        ReconciliationInput(
            period=period, entities=tuple(e for e in ctx.entities if e.code == entity), psa=ctx.psa
        ),
        id=wf_id,
        task_queue=ctx.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return RetryOutcome(
        state="started",
        workflow_id=wf_id,
        run_id=handle.result_run_id,
        detail=f"reconciling {entity} {period}",
    )


async def _rerun_reference_sync(
    ctx: RetryContext, item: ExceptionItem, request: RetryRequest
) -> RetryOutcome:
    from pssync.workflows.reference_sync import ReferenceSync, ReferenceSyncInput

    wf_id = f"reference-sync:{request.action_workflow_id or f'exception-{item.id}'}"
    handle = await ctx.client.start_workflow(
        ReferenceSync.run,
        ReferenceSyncInput(entities=ctx.entities, psa=ctx.psa),
        id=wf_id,
        task_queue=ctx.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    return RetryOutcome(
        state="started", workflow_id=wf_id, run_id=handle.result_run_id, detail="syncing reference data"
    )


PROCESS_ACTIONS: dict[str, ProcessActions] = {
    "opportunity_to_project": ProcessActions(
        retry=_retry_opportunity, fix_model=OpportunityFix, apply_fix=_fix_opportunity
    ),
    "time_to_billing": ProcessActions(retry=_retry_billing),
    "reconciliation": ProcessActions(retry=_rerun_reconciliation),
    "reference_sync": ProcessActions(retry=_rerun_reference_sync),
}


def actions_for(process: str) -> ProcessActions:
    try:
        return PROCESS_ACTIONS[process]
    except KeyError:
        raise UnknownProcess(
            f"ps-sync cannot retry {process} exceptions (it retries {', '.join(sorted(PROCESS_ACTIONS))}); "
            "skip or resolve the item once it is dealt with"
        ) from None


def validate_correction(process: str, corrected_fields: dict[str, Any]) -> BaseModel:
    """The corrections as the process's fix model, or InvalidCorrection naming each bad field."""
    actions = actions_for(process)
    if actions.fix_model is None:
        raise InvalidCorrection(
            f"{process} exceptions take no corrected fields: fix the record in its source system, then retry",
            [{"field": "corrected_fields", "message": f"not accepted for {process}"}],
        )
    try:
        fix = actions.fix_model.model_validate(corrected_fields)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in e["loc"]) or "corrected_fields", "message": e["msg"]}
            for e in error.errors()
        ]
        raise InvalidCorrection(
            f"corrected fields refused: {'; '.join(p['field'] + ': ' + p['message'] for p in problems)}",
            problems,
        ) from error
    if not fix.model_dump(exclude_none=True):
        raise InvalidCorrection(
            "fix needs at least one corrected field",
            [{"field": "corrected_fields", "message": "no field given"}],
        )
    return fix


# --- activities ------------------------------------------------------------------------------------------


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
