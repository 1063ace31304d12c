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
- month_end: a retry closes the entity's period again (joining a close already running): what now posts
  is posted as the difference, and what is right now is resolved.
- contract_amendment: a retry starts a new amendment run that reads the changed deal and what is invoiced
  afresh (after a credit note, or a correction of the deal in the CRM).
- payables: a retry tells the supplier's run for the period to read the PSA again (signal-with-start), so
  a fixed expense goes on a bill; the bill resolves the item.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import connector_errors
from canonical import LegalEntity
from canonical.reference import OpportunityFix
from connectors.roles import CrmConnector, OpportunityEditor
from ledger.records import ExceptionItem
from runs.contract_amendment import ContractAmendmentInput
from runs.month_end_close import MonthEndCloseInput
from runs.opportunity_to_project import OpportunityToProjectInput
from runs.opportunity_to_project import workflow_id as opportunity_to_project_id
from runs.payables import ExpensesApproved, PayablesInput, start_payables
from runs.reconciliation import ReconciliationInput
from runs.reference_sync import ReferenceSyncInput
from runs.starts import (
    restart_opportunity_to_project,
    signal_retry,
    start_amendment_run,
    start_billing,
    start_month_end_close,
    start_reconciliation,
    start_reference_sync,
)
from runs.time_to_billing import TimeToBillingInput
from runs.time_to_billing import workflow_id as time_to_billing_id

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
    crm, opportunity_id = str(item.record["crm"]), str(item.record["opportunity_id"])
    wf_id = item.workflow_id or opportunity_to_project_id(crm, opportunity_id)
    status, run_id = await _status(ctx.client, wf_id)
    if status == WorkflowExecutionStatus.RUNNING:
        await signal_retry(ctx.client, wf_id, request)
        return RetryOutcome(state="signalled", workflow_id=wf_id, run_id=run_id, detail="signalled retry")
    if status == WorkflowExecutionStatus.COMPLETED:
        return RetryOutcome(
            state="already_done", workflow_id=wf_id, run_id=run_id, detail="the deal's run has completed"
        )
    handle = await restart_opportunity_to_project(
        ctx.client,
        task_queue=ctx.task_queue,
        input=OpportunityToProjectInput(
            crm=crm, opportunity_id=opportunity_id, psa=ctx.psa, entities=ctx.entities
        ),
    )
    return RetryOutcome(
        state="started", workflow_id=wf_id, run_id=handle.result_run_id, detail="started the deal again"
    )


async def _start_billing(ctx: RetryContext, project_id: str, period: str) -> RetryOutcome:
    handle = await start_billing(
        ctx.client,
        task_queue=ctx.task_queue,
        input=TimeToBillingInput(
            project_id=project_id,
            period=period,
            psa=ctx.psa,
            entities=ctx.entities,
            settle_seconds=ctx.billing_settle_seconds,
            invoice_poll_interval_seconds=ctx.invoice_poll_interval_seconds,
        ),
    )
    return RetryOutcome(
        state="started",
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        detail=f"started the next billing run for {project_id} {period}",
    )


async def _retry_billing(ctx: RetryContext, item: ExceptionItem, request: RetryRequest) -> RetryOutcome:
    project_id, period = str(item.record["project_id"]), str(item.record["period"])
    wf_id = time_to_billing_id(project_id, period)
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
        await signal_retry(ctx.client, wf_id, request)
        return RetryOutcome(state="signalled", workflow_id=wf_id, run_id=run_id, detail="signalled retry")
    return await _start_billing(ctx, project_id, period)


async def _rerun_reconciliation(
    ctx: RetryContext, item: ExceptionItem, request: RetryRequest
) -> RetryOutcome:
    entity, period = str(item.record["legal_entity"]), str(item.record["period"])
    wf_id = f"reconciliation:{period}:{entity}:{request.action_workflow_id or f'exception-{item.id}'}"
    handle = await start_reconciliation(
        ctx.client,
        task_queue=ctx.task_queue,
        workflow_id=wf_id,
        input=ReconciliationInput(
            period=period, entities=tuple(e for e in ctx.entities if e.code == entity), psa=ctx.psa
        ),
    )
    return RetryOutcome(
        state="started",
        workflow_id=wf_id,
        run_id=handle.result_run_id,
        detail=f"reconciling {entity} {period}",
    )


async def _rerun_month_end(ctx: RetryContext, item: ExceptionItem, request: RetryRequest) -> RetryOutcome:
    entity, period = str(item.record["legal_entity"]), str(item.record["period"])
    handle = await start_month_end_close(
        ctx.client,
        task_queue=ctx.task_queue,
        input=MonthEndCloseInput(legal_entity=entity, period=period, psa=ctx.psa),
    )
    return RetryOutcome(
        state="started",
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        detail=f"closing {entity} {period} again",
    )


async def _rerun_reference_sync(
    ctx: RetryContext, item: ExceptionItem, request: RetryRequest
) -> RetryOutcome:
    wf_id = f"reference-sync:{request.action_workflow_id or f'exception-{item.id}'}"
    handle = await start_reference_sync(
        ctx.client,
        task_queue=ctx.task_queue,
        workflow_id=wf_id,
        input=ReferenceSyncInput(entities=ctx.entities, psa=ctx.psa),
    )
    return RetryOutcome(
        state="started", workflow_id=wf_id, run_id=handle.result_run_id, detail="syncing reference data"
    )


async def _retry_payables(ctx: RetryContext, item: ExceptionItem, request: RetryRequest) -> RetryOutcome:
    supplier_key, period = str(item.record["supplier_key"]), str(item.record["period"])
    expense = item.record.get("expense_id")
    handle = await start_payables(
        ctx.client,
        task_queue=ctx.task_queue,
        input=PayablesInput(
            psa=ctx.psa,
            supplier_key=supplier_key,
            period=period,
            poll_interval_seconds=ctx.invoice_poll_interval_seconds,
        ),
        approved=ExpensesApproved(expense_ids=(str(expense),) if expense else ()),
    )
    return RetryOutcome(
        state="signalled",
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        detail=f"asked the payables run of {supplier_key} {period} to bill again",
    )


async def _reconsider_amendment(
    ctx: RetryContext, item: ExceptionItem, request: RetryRequest
) -> RetryOutcome:
    """A new amendment run reads the deal and what is invoiced afresh: after a credit note, or once the deal
    was corrected in the CRM, the change is applied (or refused again, onto the same item)."""
    crm, opportunity_id = str(item.record["crm"]), str(item.record["opportunity_id"])
    asked_by = request.action_workflow_id or request.actor
    wf_id = await start_amendment_run(
        ctx.client,
        task_queue=ctx.task_queue,
        input=ContractAmendmentInput(
            crm=crm,
            opportunity_id=opportunity_id,
            notification_id=f"retry:{item.id}:{asked_by}",
            psa=ctx.psa,
            entities=ctx.entities,
        ),
    )
    return RetryOutcome(state="started", workflow_id=wf_id, detail="reading the changed deal again")


PROCESS_ACTIONS: dict[str, ProcessActions] = {
    "contract_amendment": ProcessActions(retry=_reconsider_amendment),
    "opportunity_to_project": ProcessActions(
        retry=_retry_opportunity, fix_model=OpportunityFix, apply_fix=_fix_opportunity
    ),
    "time_to_billing": ProcessActions(retry=_retry_billing),
    "reconciliation": ProcessActions(retry=_rerun_reconciliation),
    "month_end": ProcessActions(retry=_rerun_month_end),
    "reference_sync": ProcessActions(retry=_rerun_reference_sync),
    "payables": ProcessActions(retry=_retry_payables),
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
