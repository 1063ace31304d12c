"""The exceptions queue over HTTP: list and read items, and act on them (retry, fix-and-retry, skip, resolve,
assign to a person, and retry or skip a chosen set at once).

Roles: `ops` may act on every item; `finance` reads everything and acts on items finance owns.

Recording the action in the ledger is what claims it (open -> retrying), so a second click answers 409 rather
than retrying twice; the retry itself then runs as an `ExceptionAction` workflow (202 with its id), which
applies corrected fields to the source system, retries the process and follows the retried run. The same
functions serve the CLI (`pssync exceptions ...`) and the browser workspace.

An assignment names who should deal with an item; it is an audit event on the item (who assigned whom,
when), the newest one being the item's assignee, so assigning needs no change to the queue itself.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from temporalio.client import Client

from activities.exceptions import InvalidCorrection, UnknownProcess, actions_for, validate_correction
from canonical import ExceptionOwner
from config import Settings
from ingress.auth import ActorFromToken, require_identity, require_role
from ingress.identity import Identity
from ingress.limits import MAX_INT64, LedgerId
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.errors import ExceptionNotFound, InvalidExceptionTransition, InvalidLedgerInput
from ledger.records import ExceptionItem, Resolution
from ledger.repository import (
    act_on_exception,
    append_audit,
    audit_trail,
    get_exception,
    list_exceptions,
    reopen_exception,
)
from ledger.vocab import ExceptionStatus
from runs.exception_action import ExceptionActionInput, workflow_id
from runs.starts import start_exception_action

router = APIRouter()
_ledger_lock = threading.Lock()

READERS = ("finance", "ops")
# A role that may act only on the items of one owner; roles not listed act on every item.
ROLE_OWNS = {"finance": ExceptionOwner.FINANCE}
ASSIGNED = "exception_assigned"
ASSIGNEE_MAX = 200
BULK_MAX = 200
WAITING = (ExceptionStatus.OPEN, ExceptionStatus.RETRYING)


# --- the queue, for the ingress and the CLI alike ---------------------------------------------------------


class ActionProblem(Exception):
    """An action refused before anything was recorded; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


@dataclass(frozen=True)
class ActionStarted:
    item: ExceptionItem
    workflow_id: str


@dataclass(frozen=True)
class Assignment:
    assignee: str
    assigned_by: str
    assigned_at: datetime


def temporal_link(settings: Settings, workflow_id_: str | None) -> str | None:
    if not workflow_id_:
        return None
    base = settings.temporal_ui_url.rstrip("/")
    return f"{base}/namespaces/{quote(settings.temporal_namespace)}/workflows/{quote(workflow_id_, safe='')}"


def _load(database: Database, exception_id: int) -> ExceptionItem:
    with database.session(read_only=True) as session:
        item = get_exception(session, exception_id=exception_id)
    if item is None:
        raise ActionProblem(404, f"no exception with id {exception_id}")
    return item


def _act(database: Database, **action: Any) -> ExceptionItem:
    try:
        with database.session() as session:
            return act_on_exception(session, **action)
    except ExceptionNotFound as error:
        raise ActionProblem(404, str(error)) from error
    except InvalidExceptionTransition as error:
        raise ActionProblem(409, str(error)) from error
    except InvalidLedgerInput as error:
        raise ActionProblem(422, str(error)) from error


async def request_retry(
    database: Database,
    client: Client,
    settings: Settings,
    *,
    exception_id: int,
    actor: str,
    note: str | None = None,
    corrected_fields: dict[str, Any] | None = None,
    allowed_owner: ExceptionOwner | None = None,
) -> ActionStarted:
    """Claim the item for a retry (with corrections: a fix) and start the ExceptionAction that makes it."""
    item = await asyncio.to_thread(_load, database, exception_id)
    if allowed_owner is not None and item.owner != allowed_owner:
        raise ActionProblem(403, f"exception {exception_id} is owned by {item.owner}, not {allowed_owner}")
    try:
        actions_for(item.process)
        if corrected_fields is not None:
            validate_correction(item.process, corrected_fields)
    except UnknownProcess as error:
        raise ActionProblem(422, str(error)) from error
    except InvalidCorrection as error:
        raise ActionProblem(422, str(error), error.problems) from error
    action: Literal["retry", "fix"] = "fix" if corrected_fields is not None else "retry"
    claimed = await asyncio.to_thread(
        _act,
        database,
        exception_id=exception_id,
        action=action,
        actor=actor,
        note=note,
        corrected_fields=corrected_fields,
    )
    action_id = workflow_id(claimed.dedupe_key, claimed.updated_at)
    try:
        await start_exception_action(
            client,
            task_queue=settings.task_queue,
            dedupe_key=claimed.dedupe_key,
            claimed_at=claimed.updated_at,
            input=ExceptionActionInput(
                exception_id=claimed.id,
                action=action,
                actor=actor,
                note=note,
                corrected_fields=corrected_fields,
            ),
        )
    except Exception as error:
        # Nothing will carry the retry out: give the item back to its owner rather than leave it claimed.
        cause = str(error)

        def give_back() -> None:
            with database.session() as session:
                reopen_exception(
                    session, exception_id=claimed.id, note=f"{action} by {actor} could not start: {cause}"
                )

        await asyncio.to_thread(give_back)
        raise ActionProblem(
            503, f"the {action} could not be started, the item is open again: {error}"
        ) from error
    return ActionStarted(item=claimed, workflow_id=action_id)


async def close_item(
    database: Database,
    *,
    exception_id: int,
    action: Literal["skip", "resolve"],
    actor: str,
    note: str | None,
    allowed_owner: ExceptionOwner | None = None,
) -> ExceptionItem:
    item = await asyncio.to_thread(_load, database, exception_id)
    if allowed_owner is not None and item.owner != allowed_owner:
        raise ActionProblem(403, f"exception {exception_id} is owned by {item.owner}, not {allowed_owner}")
    return await asyncio.to_thread(
        _act, database, exception_id=exception_id, action=action, actor=actor, note=note
    )


def _check_owner(item: ExceptionItem, allowed_owner: ExceptionOwner | None) -> None:
    if allowed_owner is not None and item.owner != allowed_owner:
        raise ActionProblem(403, f"exception {item.id} is owned by {item.owner}, not {allowed_owner}")


async def assign_item(
    database: Database,
    *,
    exception_id: int,
    assignee: str,
    actor: str,
    allowed_owner: ExceptionOwner | None = None,
) -> tuple[ExceptionItem, Assignment]:
    """Name the person who should deal with a waiting item; recorded in the audit trail against `actor`."""
    assignee = " ".join(assignee.split())
    if not assignee or len(assignee) > ASSIGNEE_MAX:
        raise ActionProblem(422, f"name the person to assign, in 1 to {ASSIGNEE_MAX} characters")

    def record() -> tuple[ExceptionItem, Assignment]:
        with database.session() as session:
            item = get_exception(session, exception_id=exception_id)
            if item is None:
                raise ActionProblem(404, f"no exception with id {exception_id}")
            _check_owner(item, allowed_owner)
            if item.status not in WAITING:
                raise ActionProblem(409, f"exception {item.id} is {item.status}: nothing left to assign")
            entry = append_audit(
                session,
                workflow_id=item.workflow_id,
                run_id=item.run_id,
                actor=actor,
                action=ASSIGNED,
                entity="exception",
                key=item.dedupe_key,
                detail={"exception_id": item.id, "assignee": assignee},
            )
        return item, Assignment(assignee=assignee, assigned_by=actor, assigned_at=entry.occurred_at)

    return await asyncio.to_thread(record)


def assignments(database: Database, items: list[ExceptionItem]) -> dict[int, Assignment]:
    """Each item's newest assignment, for the items that have one."""
    found: dict[int, Assignment] = {}
    with database.session(read_only=True) as session:
        for item in items:
            for entry in audit_trail(session, key=item.dedupe_key, limit=100):
                if entry.action == ASSIGNED and entry.detail.get("exception_id") == item.id:
                    found[item.id] = Assignment(
                        assignee=str(entry.detail["assignee"]),
                        assigned_by=entry.actor,
                        assigned_at=entry.occurred_at,
                    )
                    break
    return found


@dataclass(frozen=True)
class BulkOutcome:
    exception_id: int
    # "retrying", "skipped", or "refused" with the HTTP status a single action would have answered.
    outcome: str
    detail: str
    status: int
    action_workflow_id: str | None = None


async def act_in_bulk(
    database: Database,
    client: Client,
    settings: Settings,
    *,
    action: Literal["retry", "skip"],
    exception_ids: list[int],
    actor: str,
    reason: str | None,
    allowed_owner: ExceptionOwner | None = None,
) -> list[BulkOutcome]:
    """Retry or skip each item in turn, as one person would one by one: an item refused (already closed,
    owned by another team) is reported and the rest still go ahead."""
    if len(exception_ids) > BULK_MAX:
        raise ActionProblem(422, f"at most {BULK_MAX} items at once")
    if action == "skip" and not (reason and reason.strip()):
        raise ActionProblem(422, "skipping needs a reason saying why the records may be left as they are")
    outcomes = []
    for exception_id in dict.fromkeys(exception_ids):
        try:
            if action == "retry":
                started = await request_retry(
                    database,
                    client,
                    settings,
                    exception_id=exception_id,
                    actor=actor,
                    note=reason,
                    allowed_owner=allowed_owner,
                )
                outcomes.append(
                    BulkOutcome(exception_id, "retrying", "retry started", 202, started.workflow_id)
                )
            else:
                await close_item(
                    database,
                    exception_id=exception_id,
                    action="skip",
                    actor=actor,
                    note=reason,
                    allowed_owner=allowed_owner,
                )
                outcomes.append(BulkOutcome(exception_id, "skipped", "skipped", 200))
        except ActionProblem as problem:
            outcomes.append(BulkOutcome(exception_id, "refused", str(problem), problem.status))
    return outcomes


# --- HTTP ---------------------------------------------------------------------------------------------------


class ExceptionView(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    process: str
    owner: ExceptionOwner
    status: ExceptionStatus
    reason: str
    record: dict[str, Any]
    age_seconds: int
    attempts: int
    dedupe_key: str
    workflow_id: str | None
    run_id: str | None
    temporal_url: str | None
    resolution: Resolution | None
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    # Who should deal with it, as the newest assignment names them.
    assignee: str | None = None

    @classmethod
    def of(
        cls,
        item: ExceptionItem,
        settings: Settings,
        now: datetime | None = None,
        assignment: Assignment | None = None,
    ) -> ExceptionView:
        return cls(
            id=item.id,
            process=item.process,
            owner=item.owner,
            status=item.status,
            reason=item.reason,
            record=item.record,
            age_seconds=int(item.age(now or utc_now()).total_seconds()),
            attempts=item.attempts,
            dedupe_key=item.dedupe_key,
            workflow_id=item.workflow_id,
            run_id=item.run_id,
            temporal_url=temporal_link(settings, item.workflow_id),
            resolution=item.resolution,
            created_at=item.created_at,
            updated_at=item.updated_at,
            resolved_at=item.resolved_at,
            assignee=assignment.assignee if assignment else None,
        )


class ExceptionList(BaseModel):
    items: list[ExceptionView]


class RetryBody(ActorFromToken):
    note: str | None = None


class FixBody(RetryBody):
    corrected_fields: dict[str, Any] = Field(description="the field values to retry with, in canonical names")


class SkipBody(ActorFromToken):
    reason: str = Field(min_length=1, description="why the record may be left as it is")


class ResolveBody(ActorFromToken):
    note: str | None = None


class AssignBody(ActorFromToken):
    assignee: str = Field(min_length=1, max_length=ASSIGNEE_MAX, description="who should deal with the item")


class Assigned(BaseModel):
    exception: ExceptionView
    assigned_by: str
    assigned_at: datetime


class BulkBody(ActorFromToken):
    action: Literal["retry", "skip"]
    exception_ids: list[Annotated[int, Field(ge=1, le=MAX_INT64)]] = Field(min_length=1, max_length=BULK_MAX)
    reason: str | None = Field(default=None, description="required to skip; a note to a retry")


class BulkItem(BaseModel):
    exception_id: int
    outcome: str
    detail: str
    status: int
    action_workflow_id: str | None


class BulkDone(BaseModel):
    items: list[BulkItem]


class ActionAccepted(BaseModel):
    exception: ExceptionView
    action_workflow_id: str
    temporal_url: str | None


class ItemClosed(BaseModel):
    exception: ExceptionView


def ledger(request: Request) -> Database:
    """The ingress's ledger, opened on first use (the worker migrates it)."""
    state = request.app.state
    with _ledger_lock:
        if getattr(state, "ledger", None) is None:
            settings: Settings = state.settings
            state.ledger = Database.from_url(settings.database_url)
    database: Database = state.ledger
    return database


def _problem(error: ActionProblem) -> HTTPException:
    if error.problems:
        return HTTPException(error.status, {"message": str(error), "problems": error.problems})
    return HTTPException(error.status, str(error))


def _owner_limit(role: str) -> ExceptionOwner | None:
    return ROLE_OWNS.get(role)


@router.get("/exceptions", response_model=ExceptionList)
async def list_items(
    request: Request,
    owner: ExceptionOwner | None = None,
    status: ExceptionStatus | None = None,
    process: str | None = None,
    limit: int = 200,
    database: Database = Depends(ledger),
    _: str = Depends(require_role(*READERS)),
) -> ExceptionList:
    def read() -> tuple[list[ExceptionItem], dict[int, Assignment]]:
        with database.session(read_only=True) as session:
            found = list_exceptions(session, owner=owner, status=status, process=process, limit=limit)
        return found, assignments(database, found)

    try:
        items, assigned = await asyncio.to_thread(read)
    except InvalidLedgerInput as error:
        raise HTTPException(422, str(error)) from error
    now = utc_now()
    settings = request.app.state.settings
    return ExceptionList(
        items=[ExceptionView.of(item, settings, now, assigned.get(item.id)) for item in items]
    )


@router.get("/exceptions/{exception_id}", response_model=ExceptionView)
async def read_item(
    exception_id: LedgerId,
    request: Request,
    database: Database = Depends(ledger),
    _: str = Depends(require_role(*READERS)),
) -> ExceptionView:
    try:
        item = await asyncio.to_thread(_load, database, exception_id)
    except ActionProblem as error:
        raise _problem(error) from error
    assigned = await asyncio.to_thread(assignments, database, [item])
    return ExceptionView.of(item, request.app.state.settings, assignment=assigned.get(item.id))


async def _retry(
    request: Request, exception_id: int, identity: Identity, database: Database, body: RetryBody, fields: Any
) -> JSONResponse:
    settings: Settings = request.app.state.settings
    try:
        started = await request_retry(
            database,
            request.app.state.temporal,
            settings,
            exception_id=exception_id,
            actor=identity.actor,
            note=body.note,
            corrected_fields=fields,
            allowed_owner=_owner_limit(identity.role),
        )
    except ActionProblem as error:
        raise _problem(error) from error
    accepted = ActionAccepted(
        exception=ExceptionView.of(started.item, settings),
        action_workflow_id=started.workflow_id,
        temporal_url=temporal_link(settings, started.workflow_id),
    )
    return JSONResponse(accepted.model_dump(mode="json"), status_code=202)


@router.post("/exceptions/{exception_id}/retry", status_code=202, response_model=ActionAccepted)
async def retry(
    exception_id: LedgerId,
    body: RetryBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*READERS)),
) -> JSONResponse:
    return await _retry(request, exception_id, identity, database, body, None)


@router.post("/exceptions/{exception_id}/fix", status_code=202, response_model=ActionAccepted)
async def fix(
    exception_id: LedgerId,
    body: FixBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*READERS)),
) -> JSONResponse:
    return await _retry(request, exception_id, identity, database, body, body.corrected_fields)


async def _close(
    request: Request,
    exception_id: int,
    identity: Identity,
    database: Database,
    action: Literal["skip", "resolve"],
    note: str | None,
) -> ItemClosed:
    try:
        item = await close_item(
            database,
            exception_id=exception_id,
            action=action,
            actor=identity.actor,
            note=note,
            allowed_owner=_owner_limit(identity.role),
        )
    except ActionProblem as error:
        raise _problem(error) from error
    return ItemClosed(exception=ExceptionView.of(item, request.app.state.settings))


@router.post("/exceptions/{exception_id}/skip", response_model=ItemClosed)
async def skip(
    exception_id: LedgerId,
    body: SkipBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*READERS)),
) -> ItemClosed:
    return await _close(request, exception_id, identity, database, "skip", body.reason)


@router.post("/exceptions/{exception_id}/resolve", response_model=ItemClosed)
async def resolve(
    exception_id: LedgerId,
    body: ResolveBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*READERS)),
) -> ItemClosed:
    return await _close(request, exception_id, identity, database, "resolve", body.note)


@router.post("/exceptions/{exception_id}/assign", response_model=Assigned)
async def assign(
    exception_id: LedgerId,
    body: AssignBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*READERS)),
) -> Assigned:
    """Name who should deal with a waiting item; the person assigning is the caller."""
    try:
        item, assignment = await assign_item(
            database,
            exception_id=exception_id,
            assignee=body.assignee,
            actor=identity.actor,
            allowed_owner=_owner_limit(identity.role),
        )
    except ActionProblem as error:
        raise _problem(error) from error
    return Assigned(
        exception=ExceptionView.of(item, request.app.state.settings, assignment=assignment),
        assigned_by=assignment.assigned_by,
        assigned_at=assignment.assigned_at,
    )


@router.post("/exceptions/bulk", response_model=BulkDone)
async def bulk(
    body: BulkBody,
    request: Request,
    database: Database = Depends(ledger),
    identity: Identity = Depends(require_identity(*READERS)),
) -> BulkDone:
    """Retry or skip each listed item; each is reported, and one refused does not stop the others."""
    try:
        outcomes = await act_in_bulk(
            database,
            request.app.state.temporal,
            request.app.state.settings,
            action=body.action,
            exception_ids=body.exception_ids,
            actor=identity.actor,
            reason=body.reason,
            allowed_owner=_owner_limit(identity.role),
        )
    except ActionProblem as error:
        raise _problem(error) from error
    return BulkDone(
        items=[
            BulkItem(
                exception_id=o.exception_id,
                outcome=o.outcome,
                detail=o.detail,
                status=o.status,
                action_workflow_id=o.action_workflow_id,
            )
            for o in outcomes
        ]
    )


def format_items(items: list[ExceptionItem], now: datetime | None = None) -> str:
    """The queue as a text table, for `pssync exceptions list`."""
    if not items:
        return "no exceptions"
    now = now or utc_now()
    headers = ("id", "owner", "status", "age", "tries", "process", "reason", "run")
    rows = [
        (
            str(item.id),
            item.owner.value,
            item.status.value,
            _age(item.age(now).total_seconds()),
            str(item.attempts),
            item.process,
            item.reason if len(item.reason) <= 80 else item.reason[:77] + "...",
            item.workflow_id or "-",
        )
        for item in items
    ]
    widths = [max(len(cells[i]) for cells in (headers, *rows)) for i in range(len(headers))]
    return "\n".join(
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()
        for cells in (headers, *rows)
    )


def _age(seconds: float) -> str:
    whole = int(seconds)
    if whole >= 86400:
        return f"{whole // 86400}d{whole % 86400 // 3600}h"
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60}m"
    return f"{whole // 60}m{whole % 60}s"
