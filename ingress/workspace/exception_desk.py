"""The exception workspace: the queue filtered by owner, reason, vendor and age; assign, retry, skip,
fix-and-retry one item, or retry or skip the filtered set at once.

Every action is the queue's own (`ingress.exceptions_api`: the same validation, ownership rules and ledger
transitions as the API and the CLI), recorded against the person of the verified token.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from activities.exceptions import UnknownProcess, actions_for
from canonical import ExceptionOwner
from ingress.exceptions_api import (
    ActionProblem,
    Assignment,
    act_in_bulk,
    assign_item,
    assignments,
    close_item,
    ledger,
    request_retry,
    temporal_link,
)
from ingress.identity import Identity
from ingress.limits import MAX_INT64, LedgerId
from ingress.workspace.browser_auth import (
    SignInNeeded,
    check_same_origin,
    current_person,
    form_fields,
    single,
)
from ingress.workspace.permissions import may_act_at_all, may_act_on, owner_limit
from ingress.workspace.rendering import back_to, page, to_sign_in
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.records import ExceptionItem
from ledger.repository import list_exceptions
from ledger.vocab import ExceptionStatus

router = APIRouter()

DESK = "/workspace/exceptions"
READ_PER_STATUS = 500
SHOWN = 200
FIELD_PREFIX = "field:"
# The record keys that name the system an item is about.
VENDOR_KEYS = ("vendor", "system", "erp", "psa", "crm")
AGES = {"": None, "1h": timedelta(hours=1), "1d": timedelta(days=1), "7d": timedelta(days=7)}
STATUS_CHOICES = {
    "waiting": (ExceptionStatus.OPEN, ExceptionStatus.RETRYING),
    "open": (ExceptionStatus.OPEN,),
    "retrying": (ExceptionStatus.RETRYING,),
    "skipped": (ExceptionStatus.SKIPPED,),
    "resolved": (ExceptionStatus.RESOLVED,),
}


@dataclass(frozen=True)
class Filters:
    owner: str = ""
    status: str = "waiting"
    vendor: str = ""
    reason: str = ""
    older_than: str = ""

    @classmethod
    def of(cls, query: Any) -> Filters:
        status = query.get("status", "waiting")
        return cls(
            owner=query.get("owner", "") if query.get("owner", "") in set(ExceptionOwner) else "",
            status=status if status in STATUS_CHOICES else "waiting",
            vendor=query.get("vendor", "").strip().lower(),
            reason=query.get("reason", "").strip(),
            older_than=query.get("older_than", "") if query.get("older_than", "") in AGES else "",
        )

    def fields(self) -> dict[str, str]:
        """The filters set, as the hidden fields each form carries back."""
        return {key: value for key, value in self.__dict__.items() if value}

    def query(self) -> str:
        return urlencode(self.fields())


@dataclass(frozen=True)
class DeskRow:
    item: ExceptionItem
    vendor: str
    assignment: Assignment | None
    temporal_url: str | None
    may_act: bool
    retryable: bool
    # The fields a fix may correct, those the error names first; empty when the process takes none.
    fix_fields: tuple[str, ...]


def vendor_of(item: ExceptionItem) -> str:
    for key in VENDOR_KEYS:
        value = item.record.get(key)
        if isinstance(value, str) and value:
            return value.lower()
    return ""


def fix_fields(item: ExceptionItem) -> tuple[str, ...]:
    try:
        model = actions_for(item.process).fix_model
    except UnknownProcess:
        return ()
    if model is None:
        return ()
    correctable = list(model.model_fields)
    named = [field for field in item.record.get("missing", []) or [] if field in correctable]
    return tuple(named or correctable)


def _retryable(item: ExceptionItem) -> bool:
    try:
        actions_for(item.process)
    except UnknownProcess:
        return False
    return True


def _read(database: Database, filters: Filters) -> tuple[list[ExceptionItem], dict[int, Assignment]]:
    with database.session(read_only=True) as session:
        items = [
            item
            for status in STATUS_CHOICES[filters.status]
            for item in list_exceptions(
                session, owner=filters.owner or None, status=status, limit=READ_PER_STATUS
            )
        ]
    now = utc_now()
    minimum_age = AGES[filters.older_than]
    chosen = [
        item
        for item in sorted(items, key=lambda item: (item.created_at, item.id))
        if (not filters.vendor or vendor_of(item) == filters.vendor)
        and (not filters.reason or filters.reason.lower() in item.reason.lower())
        and (minimum_age is None or item.age(now) >= minimum_age)
    ][:SHOWN]
    return chosen, assignments(database, chosen)


@router.get(DESK, include_in_schema=False)
async def desk(request: Request, database: Database = Depends(ledger)) -> Response:
    try:
        person = current_person(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    filters = Filters.of(request.query_params)
    items, assigned = await asyncio.to_thread(_read, database, filters)
    settings = request.app.state.settings
    rows = [
        DeskRow(
            item=item,
            vendor=vendor_of(item),
            assignment=assigned.get(item.id),
            temporal_url=temporal_link(settings, item.workflow_id),
            may_act=may_act_on(person, item.owner),
            retryable=_retryable(item),
            fix_fields=fix_fields(item),
        )
        for item in items
    ]
    return page(
        request,
        "exceptions.html",
        person,
        title="Exceptions",
        rows=rows,
        filters=filters,
        filter_fields=filters.fields(),
        owners=list(ExceptionOwner),
        statuses=list(STATUS_CHOICES),
        ages=[age for age in AGES if age],
        now=utc_now(),
        may_act=may_act_at_all(person),
        bulk_ids=[row.item.id for row in rows if row.may_act and row.item.status == ExceptionStatus.OPEN],
    )


async def _acting(request: Request) -> tuple[Identity, dict[str, list[str]], str]:
    check_same_origin(request)
    person = current_person(request)
    fields = await form_fields(request)
    return person, fields, Filters.of({key: values[0] for key, values in fields.items() if values}).query()


@router.post(DESK + "/{exception_id}/{action}", include_in_schema=False)
async def act(
    exception_id: LedgerId, action: str, request: Request, database: Database = Depends(ledger)
) -> Response:
    try:
        person, fields, query = await _acting(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    if not may_act_at_all(person):
        return back_to(DESK, problem=f"a {person.role} may not act on exceptions", query=query)
    limit = owner_limit(person)
    note = single(fields, "note") or None
    try:
        if action == "assign":
            _, assignment = await assign_item(
                database,
                exception_id=exception_id,
                assignee=single(fields, "assignee"),
                actor=person.actor,
                allowed_owner=limit,
            )
            said = f"exception {exception_id} assigned to {assignment.assignee} by {person.actor}"
        elif action in ("retry", "fix"):
            corrected = None
            if action == "fix":
                corrected = {
                    name.removeprefix(FIELD_PREFIX): values[0].strip()
                    for name, values in fields.items()
                    if name.startswith(FIELD_PREFIX) and values and values[0].strip()
                }
                if not corrected:
                    raise ActionProblem(422, "enter at least one corrected field to fix and retry")
            started = await request_retry(
                database,
                request.app.state.temporal,
                request.app.state.settings,
                exception_id=exception_id,
                actor=person.actor,
                note=note,
                corrected_fields=corrected,
                allowed_owner=limit,
            )
            fixed = f" with {', '.join(f'{k}={v}' for k, v in corrected.items())}" if corrected else ""
            said = f"exception {exception_id}: retry started{fixed} by {person.actor} ({started.workflow_id})"
        elif action == "skip":
            await close_item(
                database,
                exception_id=exception_id,
                action="skip",
                actor=person.actor,
                note=note,
                allowed_owner=limit,
            )
            said = f"exception {exception_id} skipped by {person.actor}"
        else:
            raise ActionProblem(404, f"no action {action!r}: assign, retry, fix or skip")
    except ActionProblem as problem:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problem.problems)
        return back_to(
            DESK,
            problem=f"exception {exception_id}: {problem}" + (f" ({detail})" if detail else ""),
            query=query,
        )
    return back_to(DESK, notice=said, query=query)


@router.post(DESK + "-bulk", include_in_schema=False)
async def bulk(request: Request, database: Database = Depends(ledger)) -> Response:
    try:
        person, fields, query = await _acting(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    if not may_act_at_all(person):
        return back_to(DESK, problem=f"a {person.role} may not act on exceptions", query=query)
    action = single(fields, "action")
    try:
        ids = [int(value) for value in fields.get("exception_id", [])]
        if any(not 1 <= value <= MAX_INT64 for value in ids):
            raise ValueError("out of range")
    except ValueError:
        return back_to(DESK, problem="the form named an exception that is not a number", query=query)
    if action not in ("retry", "skip") or not ids:
        return back_to(DESK, problem="choose retry or skip, for at least one listed item", query=query)
    try:
        outcomes = await act_in_bulk(
            database,
            request.app.state.temporal,
            request.app.state.settings,
            action="retry" if action == "retry" else "skip",
            exception_ids=ids,
            actor=person.actor,
            reason=single(fields, "note") or None,
            allowed_owner=owner_limit(person),
        )
    except ActionProblem as problem:
        return back_to(DESK, problem=str(problem), query=query)
    done = [o for o in outcomes if o.outcome != "refused"]
    refused = [o for o in outcomes if o.outcome == "refused"]
    said = f"{action}: {len(done)} of {len(outcomes)} items by {person.actor}"
    if refused:
        said += "; refused: " + "; ".join(f"{o.exception_id}: {o.detail}" for o in refused[:10])
    return back_to(DESK, notice=said, query=query)
