"""Bill now: finance or the PMO bill a project's approved work and completed milestones to date, without
waiting for the period to close (a milestone completed on the 6th need not wait for the 1st of next month).

The request signal-with-starts the project's billing run for the period with `bill_now`: a run waiting for its
period bills at once, a finished one is followed by a new run that does, and a run already drawing up its
invoice bills what was completed since in a follow-up run. Work approved later in the period is billed by a
later run. The person asking is the verified caller, recorded in the run's audit; a body naming an actor is
refused. The same function serves the CLI (`pssync bill-now`).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime

from fastapi import APIRouter, Body, Depends, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from canonical import BillingModel, Period, ProjectContract
from config import Settings
from ingress.auth import ActorFromToken, require_identity
from ingress.exceptions_api import ledger
from ingress.identity import Identity
from ledger.database import Database
from ledger.repository import get_contract
from runs.starts import start_billing_now
from runs.time_to_billing import BillNow, TimeToBillingInput

router = APIRouter()

BILL_NOW_ROLES = ("finance", "pmo")
UNAVAILABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED)


class BillNowProblem(Exception):
    """A bill-now that was not asked of any run; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class BillNowAccepted(BaseModel):
    workflow_id: str
    run_id: str | None
    project_id: str
    period: str
    requested_by: str
    milestone_id: str | None


def _contract(database: Database, psa: str, project_id: str) -> ProjectContract | None:
    with database.session(read_only=True) as session:
        return get_contract(session, psa=psa, project_id=project_id)


async def bill_now(
    client: Client,
    settings: Settings,
    database: Database,
    *,
    project_id: str,
    period: str,
    by: Identity,
    milestone_id: str | None = None,
    today: date | None = None,
) -> BillNowAccepted:
    """Ask the project's billing run for `period` to bill now, on behalf of `by`.

    Raises BillNowProblem: 403 a role that may not, 422 a malformed or future period, 404 a project ps-sync
    does not bill, 409 a milestone named on a project that does not bill by milestone, 503 Temporal
    unavailable.
    """
    if by.role not in BILL_NOW_ROLES:
        raise BillNowProblem(403, f"role {by.role!r} may not bill now; needs one of {sorted(BILL_NOW_ROLES)}")
    try:
        billed = Period(value=period)
    except ValidationError:
        raise BillNowProblem(422, f"period {period!r} is not a month written YYYY-MM") from None
    current = Period.of(today or datetime.now(UTC).date())
    if billed.value > current.value:
        raise BillNowProblem(422, f"period {period} has not begun: nothing in it can be billed yet")
    contract = await asyncio.to_thread(_contract, database, settings.psa, project_id)
    if contract is None:
        raise BillNowProblem(404, f"no {settings.psa} project {project_id} is billed by ps-sync")
    if milestone_id is not None and contract.contract.billing_model != BillingModel.FIXED_FEE:
        raise BillNowProblem(
            409,
            f"project {project_id} is billed {contract.contract.billing_model.value.replace('_', ' ')}, "
            "not by milestone: bill now without naming one to bill its approved work to date",
        )
    try:
        handle = await start_billing_now(
            client,
            task_queue=settings.task_queue,
            input=TimeToBillingInput(
                project_id=project_id,
                period=billed.value,
                psa=settings.psa,
                entities=tuple(settings.entities),
            ),
            request=BillNow(actor=by.actor, milestone_id=milestone_id),
        )
    except RPCTimeoutOrCancelledError as error:
        raise BillNowProblem(
            503, "Temporal did not confirm the request in time; it may still have reached the run"
        ) from error
    except RPCError as error:
        if error.status in UNAVAILABLE:
            raise BillNowProblem(
                503, f"Temporal is unavailable, try again shortly: {error.message}"
            ) from error
        raise BillNowProblem(502, f"Temporal refused to start or signal the run: {error.message}") from error
    return BillNowAccepted(
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        project_id=project_id,
        period=billed.value,
        requested_by=by.actor,
        milestone_id=milestone_id,
    )


# --- HTTP ---------------------------------------------------------------------------------------------------


class BillNowBody(ActorFromToken):
    milestone_id: str | None = Field(
        default=None, min_length=1, description="the completed milestone that prompts billing now (fixed fee)"
    )


@router.post(
    "/billing-runs/{project_id}/{period}/bill-now",
    response_model=BillNowAccepted,
    status_code=202,
    responses={
        404: {"description": "no project of that id is billed by ps-sync"},
        409: {"description": "a milestone named on a project that does not bill by milestone"},
        422: {"description": "a malformed or future period, or a body naming the actor"},
        503: {"description": "Temporal unavailable"},
    },
)
async def bill_now_endpoint(
    project_id: str,
    period: str,
    request: Request,
    body: BillNowBody | None = Body(default=None),
    identity: Identity = Depends(require_identity(*BILL_NOW_ROLES)),
    database: Database = Depends(ledger),
) -> BillNowAccepted:
    """Accepted, not billed: the run bills the work to date at once (finance may still be asked to approve);
    its status and result say what was billed."""
    try:
        return await bill_now(
            request.app.state.temporal,
            request.app.state.settings,
            database,
            project_id=project_id,
            period=period,
            by=identity,
            milestone_id=body.milestone_id if body else None,
        )
    except BillNowProblem as problem:
        raise HTTPException(problem.status, str(problem)) from problem
