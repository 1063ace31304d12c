"""Finance's approval inbox: every waiting invoice with its lines, approve or reject with a reason.

The decision goes through `approval_decisions.decide`, the validated decision the API and the CLI make: only
the invoice still waiting, at the version and total the page showed, counts; anything else is refused
(409) and the page says what waits now or who decided.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import Response
from temporalio.client import Client

from canonical import Money
from config import Settings
from ingress.approval_decisions import ApprovalProblem, decide, decided, read_pending
from ingress.approvals import WaitingInvoice, waiting_for_approval
from ingress.workspace.browser_auth import (
    SignInNeeded,
    check_same_origin,
    current_person,
    form_fields,
    single,
)
from ingress.workspace.permissions import may_decide
from ingress.workspace.rendering import back_to, page, to_sign_in
from runs.time_to_billing import WORKFLOW_TYPE, PendingLine

log = structlog.get_logger("ingress.workspace.inbox")

router = APIRouter()

INBOX = "/workspace/inbox"
RECENT_RUNS_READ = 20
RECENT_DECISIONS_SHOWN = 10


@dataclass(frozen=True)
class InboxRow:
    invoice: WaitingInvoice
    lines: tuple[PendingLine, ...]


@dataclass(frozen=True)
class RecentDecision:
    workflow_id: str
    decided: str
    status: str


async def _lines(client: Client, invoice: WaitingInvoice) -> tuple[PendingLine, ...]:
    try:
        pending = await read_pending(client, invoice.workflow_id)
    except ApprovalProblem as problem:
        log.info("invoice_lines_unreadable", workflow_id=invoice.workflow_id, problem=str(problem))
        return ()
    # Another version waits now (re-rated since it was listed): show no lines rather than the wrong ones.
    return pending.lines if pending is not None and pending.version == invoice.version else ()


async def _recent_decisions(client: Client, settings: Settings) -> list[RecentDecision]:
    query = (
        f"WorkflowType = '{WORKFLOW_TYPE}' AND TaskQueue = '{settings.task_queue}' "
        "AND SyncStage NOT IN ('awaiting_approval', 'approval_reminded', 'approval_escalated')"
    )
    runs = [run async for run in client.list_workflows(query, limit=RECENT_RUNS_READ)]
    answers = await asyncio.gather(*(decided(client, run.id) for run in runs))
    found = [
        RecentDecision(
            workflow_id=run.id,
            decided=answer,
            status=run.status.name.lower().replace("_", " ") if run.status else "unknown",
        )
        for run, answer in zip(runs, answers, strict=True)
        if answer
    ]
    return found[:RECENT_DECISIONS_SHOWN]


@router.get(INBOX, include_in_schema=False)
async def inbox(request: Request) -> Response:
    try:
        person = current_person(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    client: Client = request.app.state.temporal
    settings: Settings = request.app.state.settings
    rows: list[InboxRow] = []
    unreadable = []
    recent: list[RecentDecision] = []
    temporal_problem = None
    try:
        queue = await waiting_for_approval(client, settings)
        lines = await asyncio.gather(*(_lines(client, invoice) for invoice in queue.items))
        rows = [InboxRow(invoice, found) for invoice, found in zip(queue.items, lines, strict=True)]
        unreadable = queue.unreadable
    except ApprovalProblem as problem:
        temporal_problem = str(problem)
    except Exception as error:  # the page still renders, saying Temporal did not answer
        temporal_problem = f"{type(error).__name__}: {error}"
    try:
        recent = await _recent_decisions(client, settings)
    except Exception as error:  # who decided lately only adds to the inbox: never replaces it
        log.info("recent_decisions_unreadable", error=f"{type(error).__name__}: {error}")
    return page(
        request,
        "inbox.html",
        person,
        title="Invoices awaiting approval",
        rows=rows,
        unreadable=unreadable,
        recent=recent,
        temporal_problem=temporal_problem,
        may_decide=may_decide(person),
    )


@router.post(f"{INBOX}/decide", include_in_schema=False)
async def decide_from_inbox(request: Request) -> Response:
    check_same_origin(request)
    try:
        person = current_person(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    if not may_decide(person):
        return back_to(INBOX, problem=f"a {person.role} may not approve or reject invoices")
    fields = await form_fields(request)
    decision = single(fields, "decision")
    project_id, period = single(fields, "project_id"), single(fields, "period")
    reason = single(fields, "reason") or None
    if decision not in ("approve", "reject"):
        return back_to(INBOX, problem="choose approve or reject")
    if decision == "reject" and reason is None:
        return back_to(INBOX, problem=f"rejecting {project_id} {period} needs a reason")
    try:
        seen = Money(amount=Decimal(single(fields, "expected_amount")), currency=single(fields, "currency"))
    except (InvalidOperation, ValueError):
        return back_to(INBOX, problem="the form did not carry the total you saw; reload the page")
    try:
        _, recorded = await decide(
            request.app.state.temporal,
            project_id=project_id,
            period=period,
            decision="approve" if decision == "approve" else "reject",
            by=person,
            invoice_version=single(fields, "invoice_version"),
            expected_total=seen,
            reason=reason,
        )
    except ApprovalProblem as problem:
        said = str(problem)
        if problem.decided:
            said += f" ({problem.decided})"
        return back_to(INBOX, problem=f"{project_id} {period}: {said}")
    verb = "approved" if decision == "approve" else "rejected"
    return back_to(
        INBOX,
        notice=f"{project_id} {period} {verb} by {recorded.decided_by or person.actor} "
        f"at {seen.currency} {seen.amount:,.2f}",
    )
