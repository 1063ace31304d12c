"""Finance's month-end: close an entity's period on demand (`pssync close`, or
`POST /month-end/{entity}/{period}`) and read what it posted, and set how a fixed-fee project's revenue is
recognised (`pssync recognition set|remove`)."""

from __future__ import annotations

from decimal import Decimal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from temporalio.client import Client
from temporalio.exceptions import WorkflowAlreadyStartedError

from canonical import Period
from config import Settings
from ingress.auth import require_identity
from ingress.identity import Identity
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.month_end import RecognitionRecord, remove_percentage_of_completion, set_percentage_of_completion
from runs.month_end_close import MonthEndCloseInput, workflow_id
from workflows.month_end_close import MonthEndClose, MonthEndCloseResult

router = APIRouter()


class CloseAccepted(BaseModel):
    model_config = ConfigDict(frozen=True)
    workflow_id: str
    legal_entity: str
    period: str


class MonthEndProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def close_period(
    client: Client, settings: Settings, *, legal_entity: str, period: str
) -> MonthEndCloseResult:
    """Run the entity's close of the period and wait for it; one at a time per entity and period."""
    if legal_entity not in {entity.code for entity in settings.entities}:
        raise MonthEndProblem(404, f"no legal entity {legal_entity!r} is configured")
    result: MonthEndCloseResult = await client.execute_workflow(
        MonthEndClose.run,
        MonthEndCloseInput(legal_entity=legal_entity, period=period, psa=settings.psa),
        id=workflow_id(legal_entity, period),
        task_queue=settings.task_queue,
    )
    return result


def format_close(result: MonthEndCloseResult) -> str:
    """What the close posted, kind by kind, then what it could not post or value."""
    lines = [f"month-end {result.legal_entity} {result.period}:"]
    posted = [p for p in result.postings if p.outcome == "posted"]
    if not posted:
        lines.append("  nothing posted (every journal already matches what earlier runs posted)")
    for posting in posted:
        total = posting.total_debits
        amount = f"{total.amount} {total.currency}" if total is not None else "?"
        lines.append(
            f"  {posting.kind:<13} {posting.reference:<28} {posting.lines:>4} lines, debits {amount}, "
            f"{len(posting.project_ids)} project(s), {posting.journal_id}"
        )
    for posting in result.postings:
        if posting.outcome != "posted":
            lines.append(f"  NOT POSTED {posting.reference} ({posting.outcome}): {posting.reason}")
    for finding in result.findings:
        lines.append(f"  [{finding.owner}] {finding.reason}")
    if result.margins:
        lines.append("  margin by project (to date): revenue, labour cost, billed, WIP, margin")
        for margin in result.margins:
            lines.append(
                f"    {margin.project_id}: {margin.revenue.amount}, {margin.labour_cost.amount}, "
                f"{margin.billed.amount}, {margin.wip.amount}, {margin.margin.amount} {margin.currency}"
            )
    return "\n".join(lines)


def set_recognition(
    database: Database, settings: Settings, *, project_id: str, budget_hours: str, actor: str
) -> RecognitionRecord:
    try:
        hours = Decimal(budget_hours)
    except ArithmeticError:
        raise MonthEndProblem(422, f"budget hours must be a number, got {budget_hours!r}") from None
    with database.session() as session:
        try:
            return set_percentage_of_completion(
                session, psa=settings.psa, project_id=project_id, budget_hours=hours, actor=actor
            )
        except InvalidLedgerInput as error:
            raise MonthEndProblem(422, str(error)) from error


def remove_recognition(
    database: Database, settings: Settings, *, project_id: str, actor: str
) -> RecognitionRecord:
    with database.session() as session:
        removed = remove_percentage_of_completion(
            session, psa=settings.psa, project_id=project_id, actor=actor
        )
    if removed is None:
        raise MonthEndProblem(404, f"project {project_id} has no budget hours: it is recognised by milestone")
    return removed


@router.post(
    "/month-end/{legal_entity}/{period}",
    response_model=CloseAccepted,
    status_code=202,
    responses={
        404: {"description": "no such legal entity is configured"},
        409: {"description": "a close of that entity and period is running"},
        422: {"description": "a malformed or future period"},
    },
)
async def start_close_endpoint(
    legal_entity: str,
    period: str,
    request: Request,
    identity: Identity = Depends(require_identity("finance")),
) -> CloseAccepted:
    """Accepted, not closed: the run posts the journals; its result (and `pssync close`) says what."""
    settings: Settings = request.app.state.settings
    client: Client = request.app.state.temporal
    try:
        closing = Period(value=period)
    except ValidationError:
        raise HTTPException(422, f"period must be a month written YYYY-MM, got {period!r}") from None
    if legal_entity not in {entity.code for entity in settings.entities}:
        raise HTTPException(404, f"no legal entity {legal_entity!r} is configured")
    if closing.first_day > utc_now().date():
        raise HTTPException(422, f"{period} has not begun: there is nothing to close")
    run_id = workflow_id(legal_entity, closing.value)
    try:
        await client.start_workflow(
            MonthEndClose.run,
            MonthEndCloseInput(legal_entity=legal_entity, period=closing.value, psa=settings.psa),
            id=run_id,
            task_queue=settings.task_queue,
            memo={"started_by": identity.actor},
        )
    except WorkflowAlreadyStartedError:
        raise HTTPException(
            409, f"the close of {legal_entity} {closing.value} is running: {run_id}"
        ) from None
    return CloseAccepted(workflow_id=run_id, legal_entity=legal_entity, period=closing.value)
