"""Time and expenses: time entries, timesheet submissions (Kantata's approval), expenses.

Attributes, filters and the bulk-create limit (100 per request) follow the Time Entries, Timesheet
Submissions and Expenses references at https://developer.kantata.com/kantata/specification. A project that
requires time approvals only counts time as `approved` once a manager approves the timesheet it was
submitted on; approving is what emits `timesheet:updated` and `time_entry:updated` events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from sandboxes.kantata.access import kantata, require_token
from sandboxes.kantata.common import (
    ListCache,
    Predicate,
    attribute_sets,
    cache_key,
    created_updated_filters,
    currency_fields,
    external_reference_filters,
    in_range,
    only_filter,
    opt_bool,
    opt_text,
    page,
    read_body,
    req_day,
    req_int,
    req_text,
    select,
    single,
    sort_ids,
)
from sandboxes.kantata.envelope import Include, external_references, many, one, respond
from sandboxes.kantata.errors import validation, validations
from sandboxes.kantata.query import Query
from sandboxes.kantata.rates import RateFinder
from sandboxes.kantata.state import Doc, KantataState, public

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
_cache = ListCache()

TIME_INCLUDES: dict[str, Include] = {
    "workspace": one("workspaces", "workspace_id"),
    "user": one("users", "user_id"),
    "story": one("stories", "story_id"),
    "role": one("roles", "role_id", "_role_id"),
    "invoice": one("invoices", "invoice_id", "_invoice_id"),
    "active_submission": one("timesheet_submissions", "active_submission_id", "_active_submission_id"),
    "recent_submission": one("timesheet_submissions", "recent_submission_id", "_recent_submission_id"),
    "external_references": external_references(),
}
EXPENSE_INCLUDES: dict[str, Include] = {
    "workspace": one("workspaces", "workspace_id"),
    "user": one("users", "user_id"),
    "story": one("stories", "story_id"),
    "expense_category": one("expense_categories", "expense_category_id", "_expense_category_id"),
    "external_references": external_references(),
}
SUBMISSION_INCLUDES: dict[str, Include] = {
    "time_entries": many("time_entries", "time_entry_ids", lambda state, doc: list(doc["_time_entry_ids"])),
    "user": one("users", "user_id"),
    "workspace": one("workspaces", "workspace_id"),
    "external_references": external_references(),
}


def _workspace_filters(state: KantataState, query: Query, key: str) -> tuple[list[str], list[Predicate]]:
    """Candidate ids (through the per-project index when filtered by project) and shared predicates."""
    workspace_ids = query.ids("workspace_ids") or (
        [] if query.text("workspace_id") is None else [query.text("workspace_id") or ""]
    )
    only = query.ids("only")
    if workspace_ids:
        candidates = [record_id for wid in workspace_ids for record_id in state.in_workspace(key, wid)]
    elif only is not None:
        candidates = [record_id for record_id in dict.fromkeys(only) if state.get(key, record_id) is not None]
    else:
        candidates = [doc["id"] for doc in state.col(key)]
    predicates = [p for p in (only_filter(query),) if p is not None]
    predicates += created_updated_filters(query)
    if not query.flag("from_archived_workspaces"):
        archived = {doc["id"] for doc in state.col("workspaces") if doc["archived"]}
        if archived:
            predicates.append(lambda doc: doc["workspace_id"] not in archived)
    return candidates, predicates


# --- time entries -----------------------------------------------------------------------------------------


def _time_entry(state: KantataState, attrs: dict[str, Any], prefix: str, rates: RateFinder) -> Doc:
    workspace = state.require_ref("workspaces", attrs.get("workspace_id"), prefix + "workspace_id")
    day = req_day(attrs, "date_performed", prefix)
    minutes = req_int(attrs, "time_in_minutes", prefix, minimum=0)
    if minutes > 24 * 60:
        raise validation(prefix + "time_in_minutes", "time_in_minutes cannot exceed 1440 (24 hours)")
    story = None
    if attrs.get("story_id") not in (None, ""):
        story = state.require_ref("stories", attrs["story_id"], prefix + "story_id")
        if str(story["workspace_id"]) != workspace["id"]:
            raise validation(prefix + "story_id", "the task belongs to another project")
    user_id = str(attrs.get("user_id") or state.api_user_id)
    user = state.require_ref("users", user_id, prefix + "user_id")
    role_id = attrs.get("role_id")
    if role_id not in (None, ""):
        state.require_ref("roles", role_id, prefix + "role_id")
        role_id = str(role_id)
    else:
        role_id = rates.default_role(workspace["id"], user)
    default_billable = story["billable"] if story is not None else True
    rate = attrs.get("rate_in_cents")
    rate_in_cents = (
        req_int(attrs, "rate_in_cents", prefix, minimum=0)
        if rate is not None
        else rates.rate(workspace, role_id, day)
    )
    now = state.now_iso()
    return {
        "id": state.new_id("time_entries"),
        "date_performed": day,
        "time_in_minutes": minutes,
        "billable": opt_bool(attrs, "billable", default_billable, prefix),
        "notes": opt_text(attrs, "notes", prefix),
        "rate_in_cents": rate_in_cents,
        "cost_rate_in_cents": rates.cost_rate(user["id"], workspace["currency"]),
        **currency_fields(workspace["currency"]),
        # A project without required approvals counts its time as approved from the start.
        "approved": not workspace["require_time_approvals"],
        "is_invoiced": False,
        "taxable": False,
        "location": None,
        "story_id": story["id"] if story else None,
        "workspace_id": workspace["id"],
        "user_id": user["id"],
        "created_at": now,
        "updated_at": now,
        "_role_id": role_id,
        "_invoice_id": None,
        "_active_submission_id": None,
        "_recent_submission_id": None,
    }


def _time_filters(state: KantataState, query: Query) -> tuple[list[str], list[Predicate]]:
    candidates, predicates = _workspace_filters(state, query, "time_entries")
    predicates += external_reference_filters(state, "TimeEntry", query)
    # Kantata processes these three as `true` whatever value is given.
    if query.has("approved"):
        predicates.append(lambda doc: doc["approved"])
    if query.has("invoiced"):
        predicates.append(lambda doc: doc["is_invoiced"])
    if query.has("uninvoiced"):
        predicates.append(lambda doc: not doc["is_invoiced"])
    billable = query.flag("billable")
    if billable is not None:
        predicates.append(lambda doc: doc["billable"] == billable)
    between = query.date_range("date_performed_between")
    if between is not None:
        predicates.append(lambda doc: in_range(doc["date_performed"], between))
    users = query.ids("with_user_ids")
    if users is not None:
        predicates.append(lambda doc: doc["user_id"] in set(users))
    in_active = query.flag("in_active_submission")
    if in_active is not None:
        predicates.append(lambda doc: (doc["_active_submission_id"] is not None) == in_active)
    timesheet = query.text("with_timesheet_id")
    if timesheet is not None:
        predicates.append(lambda doc: doc["_active_submission_id"] == timesheet)
    invoice = query.text("in_active_invoice_id")
    if invoice is not None:
        predicates.append(lambda doc: doc["_invoice_id"] == invoice)
    return candidates, predicates


def _ordered(state: KantataState, key: str, ids: list[str], field: str, descending: bool) -> list[str]:
    if field == "created_at":
        # Ids grow with creation, so they order by creation without reading every record.
        return sorted(ids, key=int, reverse=descending)
    return sort_ids(state, key, ids, field, descending)


@router.get("/time_entries")
async def list_time_entries(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(TIME_INCLUDES)
    window = query.window()
    field, descending = query.order(
        [f"{f}:{d}" for f in ("created_at", "date_performed", "updated_at") for d in ("asc", "desc")],
        "date_performed:desc",
    )

    def build() -> list[str]:
        candidates, predicates = _time_filters(state, query)
        return _ordered(
            state, "time_entries", select(state, "time_entries", candidates, predicates), field, descending
        )

    ids = _cache.get_or_build(state, cache_key(request), build)
    return respond(
        state,
        "time_entries",
        page(state, "time_entries", ids, window),
        total=len(ids),
        window=window,
        includes=TIME_INCLUDES,
        names=names,
    )


@router.get("/time_entries/{entry_id}")
async def show_time_entry(entry_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(TIME_INCLUDES)
    return respond(
        state, "time_entries", [state.require("time_entries", entry_id)], includes=TIME_INCLUDES, names=names
    )


@router.post("/time_entries")
async def create_time_entries(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(TIME_INCLUDES)
    items = attribute_sets(await read_body(request), "time_entry", "time_entries", 100)
    with state.lock:
        rates = RateFinder(state)
        docs = [
            _time_entry(state, attrs, f"time_entries[{i}]." if len(items) > 1 else "", rates)
            for i, attrs in enumerate(items)
        ]
        state.insert("time_entries", docs)
        state.emit_many("time_entry:created", "time_entries", [(None, doc) for doc in docs])
    return respond(state, "time_entries", docs, includes=TIME_INCLUDES, names=names)


def _editable_entry(state: KantataState, entry_id: str) -> Doc:
    doc = state.require("time_entries", entry_id)
    if doc["is_invoiced"]:
        raise validation("base", "This time entry has been invoiced and can no longer be changed")
    if doc["_active_submission_id"] is not None:
        raise validation("base", "This time entry is on a submitted timesheet and is locked")
    return doc


@router.put("/time_entries/{entry_id}")
async def update_time_entry(entry_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(TIME_INCLUDES)
    attrs = single(await read_body(request), "time_entry")
    with state.lock:
        edits = set(attrs) - {"external_reference"}
        # An external reference is an integration's note about the entry, not the entry: it may be written
        # on approved and invoiced time too.
        doc = _editable_entry(state, entry_id) if edits else state.require("time_entries", entry_id)
        before = dict(doc)
        if "time_in_minutes" in attrs:
            minutes = req_int(attrs, "time_in_minutes", minimum=0)
            if minutes > 24 * 60:
                raise validation("time_in_minutes", "time_in_minutes cannot exceed 1440 (24 hours)")
            doc["time_in_minutes"] = minutes
        if "date_performed" in attrs:
            doc["date_performed"] = req_day(attrs, "date_performed")
        if "notes" in attrs:
            doc["notes"] = opt_text(attrs, "notes")
        if "billable" in attrs:
            doc["billable"] = opt_bool(attrs, "billable", None)
        if attrs.get("external_reference") is not None:
            state.put_external_reference(
                "time_entries", doc["id"], attrs["external_reference"], "external_reference"
            )
        if public(doc) != public(before):
            doc["updated_at"] = state.now_iso()
            state.save("time_entries", [doc])
            state.emit("time_entry:updated", "time_entries", before=before, after=doc)
    return respond(state, "time_entries", [doc], includes=TIME_INCLUDES, names=names)


@router.delete("/time_entries/{entry_id}")
async def delete_time_entry(entry_id: str, request: Request) -> Response:
    state = kantata(request)
    with state.lock:
        doc = _editable_entry(state, entry_id)
        state.col("time_entries").delete(doc["id"])
        state.by_workspace["time_entries"][doc["workspace_id"]].remove(doc["id"])
        state.version += 1
        state.events.record(
            "time_entry:deleted",
            "TimeEntry",
            doc["id"],
            user_id=state.api_user_id,
            previous=public(doc),
            current=None,
        )
    return Response(status_code=204)


# --- timesheet submissions --------------------------------------------------------------------------------


@router.post("/timesheet_submissions")
async def create_timesheet_submission(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SUBMISSION_INCLUDES)
    attrs = single(await read_body(request), "timesheet_submission")
    with state.lock:
        workspace = state.require_ref("workspaces", attrs.get("workspace_id"), "workspace_id")
        title = req_text(attrs, "title")
        line_item_ids = attrs.get("line_item_ids")
        if not isinstance(line_item_ids, list) or not line_item_ids:
            raise validation("line_item_ids", "line_item_ids must list the time entries to submit")
        entries, problems = [], []
        for index, raw in enumerate(line_item_ids):
            entry = state.get("time_entries", str(raw))
            field = f"line_item_ids[{index}]"
            if entry is None:
                problems.append((field, f"time entry {raw} does not exist"))
            elif entry["workspace_id"] != workspace["id"]:
                problems.append((field, f"time entry {raw} belongs to another project"))
            elif entry["is_invoiced"]:
                problems.append((field, f"time entry {raw} has already been invoiced"))
            elif entry["_active_submission_id"] is not None:
                problems.append(
                    (field, f"time entry {raw} is already on timesheet {entry['_active_submission_id']}")
                )
            else:
                entries.append(entry)
        if problems:
            raise validations(problems)
        owners = {entry["user_id"] for entry in entries}
        if len(owners) > 1:
            raise validation(
                "line_item_ids",
                f"a timesheet holds one person's time; these entries belong to {len(owners)} users",
            )
        now = state.now_iso()
        days = sorted(entry["date_performed"] for entry in entries)
        doc = {
            "id": state.new_id("timesheet_submissions"),
            "title": title,
            "comment": attrs.get("comment"),
            "status": "pending",
            "type": "TimesheetSubmission",
            "start_date": days[0],
            "end_date": days[-1],
            "line_item_total_in_cents": sum(_value_in_cents(entry) for entry in entries),
            **currency_fields(workspace["currency"]),
            "workspace_id": workspace["id"],
            "user_id": next(iter(owners)),
            "current_resolution_description": None,
            "current_resolution_created_at_date": None,
            "current_resolution_creator_id": None,
            "created_at": now,
            "updated_at": now,
            "_time_entry_ids": [entry["id"] for entry in entries],
        }
        state.insert("timesheet_submissions", [doc])
        for entry in entries:
            entry["_active_submission_id"] = entry["_recent_submission_id"] = doc["id"]
        state.save("time_entries", entries)
        state.emit("timesheet:created", "timesheet_submissions", before=None, after=doc)
    return respond(state, "timesheet_submissions", [doc], includes=SUBMISSION_INCLUDES, names=names)


def _value_in_cents(entry: Doc) -> int:
    return round(entry["time_in_minutes"] * (entry["rate_in_cents"] or 0) / 60)


@router.get("/timesheet_submissions")
async def list_timesheet_submissions(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SUBMISSION_INCLUDES)
    window = query.window()
    candidates, predicates = _workspace_filters(state, query, "timesheet_submissions")
    active = query.flag("active")
    if active is not None:
        predicates.append(lambda doc: (doc["status"] in ("pending", "approved")) == active)
    ids = select(state, "timesheet_submissions", candidates, predicates)
    return respond(
        state,
        "timesheet_submissions",
        page(state, "timesheet_submissions", ids, window),
        total=len(ids),
        window=window,
        includes=SUBMISSION_INCLUDES,
        names=names,
    )


@router.get("/timesheet_submissions/{submission_id}")
async def show_timesheet_submission(submission_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SUBMISSION_INCLUDES)
    return respond(
        state,
        "timesheet_submissions",
        [state.require("timesheet_submissions", submission_id)],
        includes=SUBMISSION_INCLUDES,
        names=names,
    )


def _resolve(
    request_state: KantataState,
    submission_id: str,
    body: dict[str, Any],
    status: str,
    on_entry: Callable[[Doc], None],
) -> Doc:
    doc = request_state.require("timesheet_submissions", submission_id)
    if doc["status"] != "pending":
        raise validation("status", f"only a pending timesheet can be {status}; this one is {doc['status']}")
    raw_resolution = body.get("resolution")
    resolution: dict[str, Any] = raw_resolution if isinstance(raw_resolution, dict) else {}
    before, now = dict(doc), request_state.now_iso()
    doc.update(
        status=status,
        updated_at=now,
        current_resolution_description=resolution.get("description"),
        current_resolution_created_at_date=now,
        current_resolution_creator_id=int(request_state.api_user_id),
    )
    request_state.save("timesheet_submissions", [doc])
    entries = [
        entry
        for entry_id in doc["_time_entry_ids"]
        if (entry := request_state.get("time_entries", entry_id)) is not None
    ]
    pairs = []
    for entry in entries:
        previous = dict(entry)
        on_entry(entry)
        entry["updated_at"] = now
        pairs.append((previous, entry))
    request_state.save("time_entries", entries)
    request_state.emit("timesheet:updated", "timesheet_submissions", before=before, after=doc)
    request_state.emit_many("time_entry:updated", "time_entries", pairs)
    return doc


@router.put("/timesheet_submissions/{submission_id}/approve")
async def approve_timesheet(submission_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SUBMISSION_INCLUDES)
    body = await read_body(request)
    with state.lock:
        doc = _resolve(state, submission_id, body, "approved", lambda entry: entry.update(approved=True))
    return respond(state, "timesheet_submissions", [doc], includes=SUBMISSION_INCLUDES, names=names)


@router.put("/timesheet_submissions/{submission_id}/reject")
async def reject_timesheet(submission_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SUBMISSION_INCLUDES)
    body = await read_body(request)
    with state.lock:
        doc = _resolve(
            state, submission_id, body, "rejected", lambda entry: entry.update(_active_submission_id=None)
        )
    return respond(state, "timesheet_submissions", [doc], includes=SUBMISSION_INCLUDES, names=names)


@router.put("/timesheet_submissions/{submission_id}/cancel")
async def cancel_timesheet(submission_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SUBMISSION_INCLUDES)
    body = await read_body(request)
    with state.lock:
        doc = _resolve(
            state, submission_id, body, "cancelled", lambda entry: entry.update(_active_submission_id=None)
        )
    return respond(state, "timesheet_submissions", [doc], includes=SUBMISSION_INCLUDES, names=names)


# --- expenses ---------------------------------------------------------------------------------------------


def _expense(state: KantataState, attrs: dict[str, Any], prefix: str) -> Doc:
    workspace = state.require_ref("workspaces", attrs.get("workspace_id"), prefix + "workspace_id")
    day = req_day(attrs, "date", prefix)
    category = state.require_ref(
        "expense_categories", attrs.get("expense_category_id"), prefix + "expense_category_id"
    )
    amount = req_int(attrs, "amount_in_cents", prefix, minimum=0)
    story_id = attrs.get("story_id")
    if story_id not in (None, ""):
        story = state.require_ref("stories", story_id, prefix + "story_id")
        if str(story["workspace_id"]) != workspace["id"]:
            raise validation(prefix + "story_id", "the task belongs to another project")
    user = state.require_ref("users", attrs.get("user_id") or state.api_user_id, prefix + "user_id")
    now = state.now_iso()
    return {
        "id": state.new_id("expenses"),
        "date": day,
        "category": req_text(attrs, "category", prefix),
        "amount_in_cents": amount,
        **currency_fields(workspace["currency"]),
        "notes": opt_text(attrs, "notes", prefix),
        "billable": opt_bool(attrs, "billable", True, prefix),
        "reimbursable": opt_bool(attrs, "reimbursable", False, prefix),
        # Who was paid, as typed on the expense (Kantata keeps the vendor as free text).
        "vendor": opt_text(attrs, "vendor", prefix),
        # Without an expense approval requirement Kantata counts an expense as approved when logged.
        "approved": not workspace["require_expense_approvals"],
        "is_invoiced": False,
        "workspace_id": workspace["id"],
        "user_id": user["id"],
        "story_id": str(story_id) if story_id not in (None, "") else None,
        "created_at": now,
        "updated_at": now,
        "_expense_category_id": category["id"],
        "_invoice_id": None,
    }


@router.get("/expenses")
async def list_expenses(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(EXPENSE_INCLUDES)
    window = query.window()
    field, descending = query.order(
        [f"{f}:{d}" for f in ("date", "created_at", "amount", "category") for d in ("asc", "desc")],
        "date:desc",
    )
    field = {"amount": "amount_in_cents"}.get(field, field)

    def build() -> list[str]:
        candidates, predicates = _workspace_filters(state, query, "expenses")
        predicates += external_reference_filters(state, "Expense", query)
        approved = query.flag("approved")
        if approved is not None:
            predicates.append(lambda doc: doc["approved"] == approved)
        if query.flag("invoiced"):
            predicates.append(lambda doc: doc["is_invoiced"])
        if query.flag("uninvoiced"):
            predicates.append(lambda doc: not doc["is_invoiced"])
        between = query.date_range("date_expensed_between")
        if between is not None:
            predicates.append(lambda doc: in_range(doc["date"], between))
        return _ordered(
            state, "expenses", select(state, "expenses", candidates, predicates), field, descending
        )

    ids = _cache.get_or_build(state, cache_key(request), build)
    return respond(
        state,
        "expenses",
        page(state, "expenses", ids, window),
        total=len(ids),
        window=window,
        includes=EXPENSE_INCLUDES,
        names=names,
    )


@router.get("/expenses/{expense_id}")
async def show_expense(expense_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(EXPENSE_INCLUDES)
    return respond(
        state, "expenses", [state.require("expenses", expense_id)], includes=EXPENSE_INCLUDES, names=names
    )


@router.put("/expenses/{expense_id}")
async def update_expense(expense_id: str, request: Request) -> JSONResponse:
    """Notes, vendor and reimbursable until the expense is invoiced; an external reference at any time (it
    is an integration's note about the expense, not the expense)."""
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(EXPENSE_INCLUDES)
    attrs = single(await read_body(request), "expense")
    with state.lock:
        doc = state.require("expenses", expense_id)
        before = dict(doc)
        edits = {key: attrs[key] for key in ("notes", "vendor", "reimbursable") if key in attrs}
        if edits and doc["is_invoiced"]:
            raise validation("base", "This expense has been invoiced and can no longer be changed")
        if "notes" in edits:
            doc["notes"] = opt_text(attrs, "notes")
        if "vendor" in edits:
            doc["vendor"] = opt_text(attrs, "vendor")
        if "reimbursable" in edits:
            doc["reimbursable"] = opt_bool(attrs, "reimbursable", False)
        if attrs.get("external_reference") is not None:
            state.put_external_reference(
                "expenses", doc["id"], attrs["external_reference"], "external_reference"
            )
        if public(doc) != public(before):
            doc["updated_at"] = state.now_iso()
            state.save("expenses", [doc])
            state.emit("expense:updated", "expenses", before=before, after=doc)
    return respond(state, "expenses", [doc], includes=EXPENSE_INCLUDES, names=names)


@router.post("/expenses")
async def create_expenses(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(EXPENSE_INCLUDES)
    items = attribute_sets(await read_body(request), "expense", "expenses", 100)
    with state.lock:
        docs = [
            _expense(state, attrs, f"expenses[{i}]." if len(items) > 1 else "")
            for i, attrs in enumerate(items)
        ]
        state.insert("expenses", docs)
        state.emit_many("expense:created", "expenses", [(None, doc) for doc in docs])
    return respond(state, "expenses", docs, includes=EXPENSE_INCLUDES, names=names)
