"""Finance's decisions: approve or reject an invoice waiting in a TimeToBilling run, write off one that an
InvoiceToCash run follows."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from pssync.ingress.auth import require_role
from pssync.ingress.starts import signal_if_running
from pssync.workflows.invoice_to_cash import WriteOffRequest
from pssync.workflows.invoice_to_cash import workflow_id as invoice_to_cash_id
from pssync.workflows.time_to_billing import ApprovalDecision, workflow_id

router = APIRouter()


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    approver: str = Field(min_length=1)
    reason: str | None = None


class DecisionAccepted(BaseModel):
    workflow_id: str
    decision: str


async def _decide(
    request: Request, project_id: str, period: str, signal: str, body: DecisionBody
) -> DecisionAccepted:
    wf_id = workflow_id(project_id, period)
    if not await signal_if_running(
        request.app.state.temporal,
        wf_id,
        signal,
        ApprovalDecision(approver=body.approver, reason=body.reason),
    ):
        raise HTTPException(404, f"no running billing run {wf_id}")
    return DecisionAccepted(workflow_id=wf_id, decision=signal)


@router.post("/billing-runs/{project_id}/{period}/approve", response_model=DecisionAccepted)
async def approve(
    project_id: str,
    period: str,
    body: DecisionBody,
    request: Request,
    _: str = Depends(require_role("finance")),
) -> DecisionAccepted:
    return await _decide(request, project_id, period, "approve", body)


@router.post("/billing-runs/{project_id}/{period}/reject", response_model=DecisionAccepted)
async def reject(
    project_id: str,
    period: str,
    body: DecisionBody,
    request: Request,
    _: str = Depends(require_role("finance")),
) -> DecisionAccepted:
    if not body.reason:
        raise HTTPException(422, "a rejection needs a reason")
    return await _decide(request, project_id, period, "reject", body)


class WriteOffBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    actor: str = Field(min_length=1)
    reason: str = Field(min_length=1)


class WriteOffAccepted(BaseModel):
    workflow_id: str


@router.post("/invoices/{erp}/{invoice_id}/write-off", response_model=WriteOffAccepted, status_code=202)
async def write_off(
    erp: str,
    invoice_id: str,
    body: WriteOffBody,
    request: Request,
    _: str = Depends(require_role("finance")),
) -> WriteOffAccepted:
    """Accepted, not done: the run credits what is still due and ends written off, unless the invoice
    settles first; its status and result say which."""
    wf_id = invoice_to_cash_id(erp, invoice_id)
    if not await signal_if_running(
        request.app.state.temporal, wf_id, "write_off", WriteOffRequest(actor=body.actor, reason=body.reason)
    ):
        raise HTTPException(404, f"no invoice followed by a running {wf_id}")
    return WriteOffAccepted(workflow_id=wf_id)
