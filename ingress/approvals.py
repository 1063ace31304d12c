"""Finance's decisions over HTTP: the invoices waiting for approval, approving or rejecting one, writing off
one that an InvoiceToCash run follows.

The decisions themselves live in approval_decisions, which the CLI (`pssync approve|reject`) shares. The
person deciding is the verified caller; a body naming an approver or actor is refused.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.service import RPCError

from canonical import Money
from config import Settings
from ingress.approval_decisions import (
    ApprovalProblem,
    decide,
    decided,
    read_pending,
    rpc_problem,
)
from ingress.auth import ActorFromToken, require_identity
from ingress.exceptions_api import temporal_link
from ingress.identity import Identity
from ingress.write_off_decisions import WriteOffProblem
from ingress.write_off_decisions import write_off as request_write_off
from runs import search_attributes as sa
from runs.invoice_to_cash import workflow_id as invoice_to_cash_id
from runs.time_to_billing import WORKFLOW_TYPE, PendingApproval, workflow_id

# The CLI reaches the decisions through this module, as it always has.
__all__ = ["ApprovalProblem", "decide", "decided", "read_pending", "router", "waiting_for_approval"]

router = APIRouter()

APPROVAL_STAGES = ("awaiting_approval", "approval_reminded", "approval_escalated")
# Reading each waiting run is one query to its worker: enough at once to be quick, few enough not to
# crowd out the workers' own work.
QUERY_CONCURRENCY = 8


# --- approving and rejecting --------------------------------------------------------------------------------


class DecisionBody(ActorFromToken):
    invoice_version: str = Field(min_length=1, description="the waiting invoice's version, as listed")
    expected_total: Money = Field(
        description="the waiting invoice's total as you saw it (amount as a string); any other is refused"
    )
    reason: str | None = Field(default=None, description="required to reject: it goes back with the entries")


class DecisionRecorded(BaseModel):
    workflow_id: str
    decision: str
    stage: str
    decided_by: str
    invoice_version: str | None


class DecisionRefused(BaseModel):
    detail: str
    workflow_id: str
    # What waits now (a decision on it may succeed), or else who decided the invoice.
    pending: PendingApproval | None
    decided: str | None


async def _decide(
    request: Request,
    project_id: str,
    period: str,
    decision: Literal["approve", "reject"],
    body: DecisionBody,
    identity: Identity,
) -> DecisionRecorded | JSONResponse:
    try:
        wf_id, recorded = await decide(
            request.app.state.temporal,
            project_id=project_id,
            period=period,
            decision=decision,
            by=identity,
            invoice_version=body.invoice_version,
            expected_total=body.expected_total,
            reason=body.reason,
        )
    except ApprovalProblem as problem:
        if problem.status == 409:
            refused = DecisionRefused(
                detail=str(problem),
                workflow_id=workflow_id(project_id, period),
                pending=problem.pending,
                decided=problem.decided,
            )
            return JSONResponse(refused.model_dump(mode="json"), status_code=409)
        raise HTTPException(problem.status, str(problem)) from problem
    return DecisionRecorded(
        workflow_id=wf_id,
        decision=recorded.decision,
        stage=recorded.stage,
        decided_by=recorded.decided_by or identity.actor,
        invoice_version=recorded.invoice_version,
    )


DECISION_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "no billing run for the project and period"},
    409: {"model": DecisionRefused, "description": "refused by the run: what is waiting now, if anything"},
    503: {"description": "Temporal unavailable"},
}


@router.post(
    "/billing-runs/{project_id}/{period}/approve",
    response_model=DecisionRecorded,
    responses=DECISION_RESPONSES,
)
async def approve(
    project_id: str,
    period: str,
    body: DecisionBody,
    request: Request,
    identity: Identity = Depends(require_identity("finance")),
) -> DecisionRecorded | JSONResponse:
    return await _decide(request, project_id, period, "approve", body, identity)


@router.post(
    "/billing-runs/{project_id}/{period}/reject",
    response_model=DecisionRecorded,
    responses=DECISION_RESPONSES,
)
async def reject(
    project_id: str,
    period: str,
    body: DecisionBody,
    request: Request,
    identity: Identity = Depends(require_identity("finance")),
) -> DecisionRecorded | JSONResponse:
    if not (body.reason and body.reason.strip()):
        raise HTTPException(422, "a rejection needs a reason")
    return await _decide(request, project_id, period, "reject", body, identity)


# --- what waits for finance ---------------------------------------------------------------------------------


class LineSummary(BaseModel):
    kind: str
    lines: int
    amount: Decimal


class WaitingInvoice(BaseModel):
    workflow_id: str
    stage: str
    customer: str
    project_id: str
    legal_entity: str
    period: str
    version: str
    amount: Decimal
    currency: str
    line_count: int
    line_summary: list[LineSummary]
    reason: str
    asked_at: datetime
    waited_seconds: int
    remind_at: datetime
    escalate_at: datetime
    temporal_url: str | None

    @classmethod
    def of(cls, pending: PendingApproval, stage: str, settings: Settings, now: datetime) -> WaitingInvoice:
        by_kind: dict[str, list[Decimal]] = defaultdict(list)
        for line in pending.lines:
            by_kind[line.kind].append(line.amount.amount)
        return cls(
            workflow_id=pending.workflow_id,
            stage=stage,
            customer=pending.customer,
            project_id=pending.project_id,
            legal_entity=pending.legal_entity,
            period=pending.period,
            version=pending.version,
            amount=pending.total.amount,
            currency=pending.total.currency,
            line_count=len(pending.lines),
            line_summary=[
                LineSummary(kind=kind, lines=len(amounts), amount=sum(amounts, Decimal(0)))
                for kind, amounts in by_kind.items()
            ],
            reason=pending.reason,
            asked_at=pending.asked_at,
            waited_seconds=max(0, int((now - pending.asked_at).total_seconds())),
            remind_at=pending.remind_at,
            escalate_at=pending.escalate_at,
            temporal_url=temporal_link(settings, pending.workflow_id),
        )


class UnreadableRun(BaseModel):
    workflow_id: str
    stage: str
    problem: str


class ApprovalQueue(BaseModel):
    items: list[WaitingInvoice]
    # Runs visibility lists as waiting whose invoice could not be read (worker down, an older run).
    unreadable: list[UnreadableRun]


async def waiting_for_approval(client: Client, settings: Settings, limit: int = 200) -> ApprovalQueue:
    stages = ", ".join(f"'{stage}'" for stage in APPROVAL_STAGES)
    query = (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{settings.task_queue}' AND SyncStage IN ({stages})"
    )
    try:
        runs = [
            (run.id, run.typed_search_attributes.get(sa.SYNC_STAGE) or "")
            async for run in client.list_workflows(query, limit=limit)
        ]
    except RPCError as error:
        raise rpc_problem(error, "visibility") from error
    gate = asyncio.Semaphore(QUERY_CONCURRENCY)

    async def read(wf_id: str) -> PendingApproval | str | None:
        async with gate:
            try:
                return await read_pending(client, wf_id)
            except ApprovalProblem as problem:
                return str(problem)

    answers = await asyncio.gather(*(read(wf_id) for wf_id, _ in runs))
    now = datetime.now(UTC)
    items, unreadable = [], []
    for (wf_id, stage), answer in zip(runs, answers, strict=True):
        if isinstance(answer, PendingApproval):
            items.append(WaitingInvoice.of(answer, stage, settings, now))
        elif isinstance(answer, str):
            unreadable.append(UnreadableRun(workflow_id=wf_id, stage=stage, problem=answer))
        # None: decided since visibility last indexed the run.
    items.sort(key=lambda item: item.asked_at)
    return ApprovalQueue(items=items, unreadable=unreadable)


@router.get("/approvals", response_model=ApprovalQueue)
async def approvals(
    request: Request,
    limit: int = Query(default=200, ge=1, le=1000),
    _: Identity = Depends(require_identity("finance")),
) -> ApprovalQueue:
    """Invoices waiting for finance, longest waiting first."""
    try:
        return await waiting_for_approval(request.app.state.temporal, request.app.state.settings, limit)
    except ApprovalProblem as problem:
        raise HTTPException(problem.status, str(problem)) from problem


# --- write-off ----------------------------------------------------------------------------------------------


class WriteOffBody(ActorFromToken):
    reason: str = Field(min_length=1, description="written on the credit note")
    expected_due: Money = Field(
        description="the amount due as you saw it (amount as a string); any other is refused"
    )


class WriteOffTaken(BaseModel):
    workflow_id: str
    requested_by: str
    invoice_number: str
    amount_due: Money


class WriteOffRefusedBody(BaseModel):
    detail: str
    workflow_id: str
    # What the run shows now: its stage, and what is due if the person wants to decide again.
    stage: str | None
    amount_due: Money | None
    write_off_requested_by: str | None


@router.post(
    "/invoices/{erp}/{invoice_id}/write-off",
    response_model=WriteOffTaken,
    status_code=202,
    responses={
        404: {"description": "no running InvoiceToCash follows the invoice"},
        409: {"model": WriteOffRefusedBody, "description": "refused by the run: what it shows now"},
        503: {"description": "Temporal unavailable"},
    },
)
async def write_off(
    erp: str,
    invoice_id: str,
    body: WriteOffBody,
    request: Request,
    identity: Identity = Depends(require_identity("finance")),
) -> WriteOffTaken | JSONResponse:
    """Accepted, not done: the run credits what is due and ends written off, unless the invoice settles
    first; its status and result say which."""
    try:
        wf_id, accepted = await request_write_off(
            request.app.state.temporal,
            erp=erp,
            invoice_id=invoice_id,
            by=identity,
            reason=body.reason,
            expected_due=body.expected_due,
        )
    except WriteOffProblem as problem:
        if problem.status == 409:
            followed = problem.followed
            refused = WriteOffRefusedBody(
                detail=str(problem),
                workflow_id=invoice_to_cash_id(erp, invoice_id),
                stage=followed.stage if followed else None,
                amount_due=followed.summary.amount_due if followed and followed.summary else None,
                write_off_requested_by=followed.write_off_requested_by if followed else None,
            )
            return JSONResponse(refused.model_dump(mode="json"), status_code=409)
        raise HTTPException(problem.status, str(problem)) from problem
    return WriteOffTaken(
        workflow_id=wf_id,
        requested_by=accepted.requested_by,
        invoice_number=accepted.invoice_number,
        amount_due=accepted.amount_due,
    )
