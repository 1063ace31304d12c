"""Projects: workspaces, stories (tasks and milestones), participations, users and roles.

Paths, attributes and filters follow https://developer.kantata.com/kantata/specification (Workspaces,
Stories, Participations, Users, Roles, Account Invitations).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sandboxes.kantata.access import kantata, require_token
from sandboxes.kantata.common import (
    ListCache,
    as_int,
    attribute_sets,
    cache_key,
    created_updated_filters,
    currency_fields,
    external_reference_filters,
    only_filter,
    opt_bool,
    opt_day,
    opt_text,
    page,
    read_body,
    req_int,
    req_text,
    select,
    single,
    sort_ids,
)
from sandboxes.kantata.currency import from_subunits, to_subunits
from sandboxes.kantata.custom_fields import apply_custom_fields
from sandboxes.kantata.envelope import Include, external_references, many, one, respond
from sandboxes.kantata.errors import bad_request, not_found, validation
from sandboxes.kantata.query import Query
from sandboxes.kantata.state import Doc, KantataState, public

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])
_cache = ListCache()

# Project status keys by colour band. Kantata publishes the full key list in its knowledge base
# ("Project Status List"); only 501 = Cancelled (red) is quoted in the API reference, the others are the
# sandbox's own picks within the documented colour bands.
PROJECT_STATUSES: dict[int, tuple[str, str]] = {
    100: ("Not Started", "gray"),
    310: ("In Progress", "green"),
    420: ("On Hold", "yellow"),
    501: ("Cancelled", "red"),
    600: ("Completed", "blue"),
}
DEFAULT_STATUS_KEY = 310
STORY_TYPES = ("task", "deliverable", "milestone", "issue")
STORY_STATES = ("not started", "started", "needs info", "completed")


def _status(key: int) -> dict[str, Any]:
    message, color = PROJECT_STATUSES[key]
    return {"color": color, "key": str(key), "message": message}


def _participants(state: KantataState, doc: Doc) -> list[str]:
    return [str(p["user_id"]) for p in _participations(state, doc)]


def _participations(state: KantataState, doc: Doc) -> list[Doc]:
    found = (state.get("participations", pid) for pid in state.in_workspace("participations", doc["id"]))
    return [p for p in found if p is not None]


def _next_milestone(state: KantataState, doc: Doc) -> list[str]:
    stories = (state.get("stories", sid) for sid in state.in_workspace("stories", doc["id"]))
    open_milestones = [
        s for s in stories if s and s["story_type"] == "milestone" and s["state"] != "completed"
    ]
    open_milestones.sort(key=lambda s: (s.get("due_date") or "9999-12-31", int(s["id"])))
    return [open_milestones[0]["id"]] if open_milestones else []


WORKSPACE_INCLUDES: dict[str, Include] = {
    "creator": one("users", "creator_id", "_creator_id"),
    "primary_maven": one("users", "primary_maven_id", "_primary_maven_id"),
    "participants": many("users", "participant_ids", _participants),
    "participations": many(
        "participations",
        "participation_ids",
        lambda state, doc: [p["id"] for p in _participations(state, doc)],
    ),
    "custom_field_values": many(
        "custom_field_values",
        "custom_field_value_ids",
        lambda state, doc: [v["id"] for v in state.values_of("Workspace", doc["id"])],
    ),
    "external_references": external_references(),
    "next_uncompleted_milestone": Include("stories", "next_uncompleted_milestone_id", False, _next_milestone),
}
STORY_INCLUDES: dict[str, Include] = {
    "workspace": one("workspaces", "workspace_id"),
    "parent": one("stories", "parent_id", "_parent_id"),
    "external_references": external_references(),
}
PARTICIPATION_INCLUDES: dict[str, Include] = {
    "user": one("users", "user_id"),
    "workspace": one("workspaces", "workspace_id"),
    "active_roles": many(
        "roles", "active_role_ids", lambda state, doc: [doc["_role_id"]] if doc.get("_role_id") else []
    ),
    "primary_role": Include("roles", "primary_role_id", False, lambda state, doc: _account_role(state, doc)),
    "external_references": external_references(),
}
USER_INCLUDES: dict[str, Include] = {"role": one("roles", "role_id", "_role_id")}


def _account_role(state: KantataState, participation: Doc) -> list[str]:
    user = state.get("users", participation["user_id"])
    return [user["_role_id"]] if user and user.get("_role_id") else []


# --- workspaces ------------------------------------------------------------------------------------------


def _money_subunits(value: Any, currency: str, field: str) -> int:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise validation(field, f"{field} must be a number") from None
    try:
        subunits = to_subunits(amount, currency)
    except ValueError:
        raise validation(field, f"{field} {value} has more decimal places than {currency} allows") from None
    if subunits < 0:
        raise validation(field, f"{field} must not be negative")
    return subunits


def _create_workspace(state: KantataState, attrs: dict[str, Any], prefix: str) -> Doc:
    title = req_text(attrs, "title", prefix)
    rate_card_id = attrs.get("rate_card_id")
    if rate_card_id not in (None, ""):
        rate_card = state.require_ref("rate_cards", rate_card_id, prefix + "rate_card_id")
        # With a rate card the project takes the card's currency; the `currency` attribute is ignored.
        currency = rate_card["currency"]
    else:
        currency = attrs.get("currency") or "USD"
        if not (
            isinstance(currency, str) and len(currency) == 3 and currency.isalpha() and currency.isupper()
        ):
            raise validation(prefix + "currency", f"currency must be an ISO 4217 code, got {currency!r}")
    budgeted = opt_bool(attrs, "budgeted", True, prefix)
    price = attrs.get("price")
    if budgeted and price is None:
        raise validation(prefix + "price", "Please enter a budget for this budgeted project")
    price_in_cents = _money_subunits(price, currency, prefix + "price") if price is not None else None
    start_date, due_date = opt_day(attrs, "start_date", prefix), opt_day(attrs, "due_date", prefix)
    if start_date and due_date and due_date < start_date:
        raise validation(prefix + "due_date", "due_date must not be before start_date")
    creator_role = attrs.get("creator_role", "maven")
    if creator_role not in ("maven", "consultant", "buyer", "client"):
        raise validation(prefix + "creator_role", "creator_role must be maven/consultant or buyer/client")
    status_key = as_int(attrs.get("status_key", DEFAULT_STATUS_KEY), prefix + "status_key")
    if status_key not in PROJECT_STATUSES:
        raise validation(prefix + "status_key", f"unknown status_key {status_key}")
    primary_maven_id = attrs.get("primary_maven_id")
    if primary_maven_id is not None:
        state.require_ref("users", primary_maven_id, prefix + "primary_maven_id")
    now = state.now_iso()
    return {
        "id": state.new_id("workspaces"),
        "title": title,
        "description": opt_text(attrs, "description", prefix),
        "archived": False,
        "budgeted": budgeted,
        "price": from_subunits(price_in_cents, currency) if price_in_cents is not None else None,
        "price_in_cents": price_in_cents,
        **currency_fields(currency),
        "start_date": start_date,
        "due_date": due_date,
        "effective_due_date": due_date,
        "access_level": attrs.get("access_level", "invitation"),
        "rate_card_id": int(rate_card_id) if rate_card_id not in (None, "") else None,
        "require_time_approvals": opt_bool(attrs, "require_time_approvals", False, prefix),
        "require_expense_approvals": opt_bool(attrs, "require_expense_approvals", False, prefix),
        "tasks_default_non_billable": opt_bool(attrs, "tasks_default_non_billable", False, prefix),
        "status": _status(status_key),
        "account_id": int(state.account_id),
        "stage": "project",
        "consultant_role_name": attrs.get("consultant_role_name") or "Provider",
        "client_role_name": attrs.get("client_role_name") or "Client",
        "percentage_complete": 0,
        "created_at": now,
        "updated_at": now,
        "_creator_id": state.api_user_id,
        "_creator_role": "buyer" if creator_role in ("buyer", "client") else "maven",
        "_primary_maven_id": str(primary_maven_id) if primary_maven_id is not None else state.api_user_id,
    }


@router.get("/workspaces")
async def list_workspaces(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(WORKSPACE_INCLUDES)
    window = query.window()
    field, descending = query.order(
        [
            f"{f}:{d}"
            for f in ("created_at", "updated_at", "title", "start_date", "due_date")
            for d in ("asc", "desc")
        ],
        "updated_at:desc",
    )
    archived = query.text("archived") or ("include" if query.flag("include_archived") else "exclude")
    if archived not in ("only", "exclude", "include"):
        raise bad_request("archived must be only, exclude or include")
    matching = (query.text("matching") or "").lower().split()

    def build() -> list[str]:
        predicates = [p for p in (only_filter(query),) if p is not None]
        predicates += external_reference_filters(state, "Workspace", query) + created_updated_filters(query)
        if archived != "include":
            predicates.append(lambda doc: doc["archived"] == (archived == "only"))
        if matching:
            predicates.append(
                lambda doc: all(
                    any(word.startswith(term) for word in doc["title"].lower().split()) for term in matching
                )
            )
        ids = select(state, "workspaces", [doc["id"] for doc in state.col("workspaces")], predicates)
        return sort_ids(state, "workspaces", ids, field, descending)

    ids = _cache.get_or_build(state, cache_key(request), build)
    return respond(
        state,
        "workspaces",
        page(state, "workspaces", ids, window),
        total=len(ids),
        window=window,
        includes=WORKSPACE_INCLUDES,
        names=names,
    )


@router.get("/workspaces/{workspace_id}")
async def show_workspace(workspace_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(WORKSPACE_INCLUDES)
    doc = state.require("workspaces", workspace_id)
    # Kantata's show route applies the index's default filters: an archived project is a 404 unless asked for.
    if doc["archived"] and not query.flag("include_archived"):
        raise not_found()
    return respond(state, "workspaces", [doc], includes=WORKSPACE_INCLUDES, names=names)


@router.post("/workspaces")
async def create_workspaces(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(WORKSPACE_INCLUDES)
    items = attribute_sets(await read_body(request), "workspace", "workspaces", 100)
    with state.lock:
        prepared = []
        for index, attrs in enumerate(items):
            prefix = f"workspaces[{index}]." if len(items) > 1 else ""
            prepared.append((_create_workspace(state, attrs, prefix), attrs, prefix))
        created = []
        for doc, attrs, prefix in prepared:
            state.insert("workspaces", [doc])
            creator = {"workspace_id": doc["id"], "user_id": state.api_user_id, "role": doc["_creator_role"]}
            _insert_participations(
                state,
                [
                    creator,
                    *(
                        {**p, "workspace_id": doc["id"], "role": "maven"}
                        for p in attrs.get("participations") or []
                        if str(p.get("user_id")) != state.api_user_id
                    ),
                ],
                prefix,
            )
            if attrs.get("external_reference") is not None:
                state.put_external_reference(
                    "workspaces", doc["id"], attrs["external_reference"], prefix + "external_reference"
                )
            apply_custom_fields(state, "workspaces", doc, attrs.get("custom_fields"), prefix)
            state.emit("workspace:created", "workspaces", before=None, after=doc)
            created.append(doc)
    return respond(state, "workspaces", created, includes=WORKSPACE_INCLUDES, names=names)


@router.put("/workspaces/{workspace_id}")
async def update_workspace(workspace_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(WORKSPACE_INCLUDES)
    attrs = single(await read_body(request), "workspace")
    with state.lock:
        doc = state.require("workspaces", workspace_id)
        before = dict(doc)
        changes: dict[str, Any] = {}
        for field in ("title", "description"):
            if field in attrs:
                changes[field] = req_text(attrs, field) if field == "title" else opt_text(attrs, field)
        for field in ("archived", "require_time_approvals", "require_expense_approvals"):
            if field in attrs:
                changes[field] = opt_bool(attrs, field, None)
        for field in ("start_date", "due_date"):
            if field in attrs:
                changes[field] = opt_day(attrs, field)
        if "due_date" in changes:
            changes["effective_due_date"] = changes["due_date"]
        if "status_key" in attrs:
            key = req_int(attrs, "status_key")
            if key not in PROJECT_STATUSES:
                raise validation("status_key", f"unknown status_key {key}")
            changes["status"] = _status(key)
        if "price" in attrs:
            cents = _money_subunits(attrs["price"], doc["currency"], "price")
            changes.update(price_in_cents=cents, price=from_subunits(cents, doc["currency"]))
        if changes:
            doc.update(changes, updated_at=state.now_iso())
            state.save("workspaces", [doc])
            state.emit("workspace:updated", "workspaces", before=before, after=doc)
        if attrs.get("external_reference") is not None:
            state.put_external_reference(
                "workspaces", doc["id"], attrs["external_reference"], "external_reference"
            )
        apply_custom_fields(state, "workspaces", doc, attrs.get("custom_fields"), "")
    return respond(state, "workspaces", [doc], includes=WORKSPACE_INCLUDES, names=names)


# --- participations --------------------------------------------------------------------------------------


def _insert_participations(state: KantataState, items: list[dict[str, Any]], prefix: str) -> list[Doc]:
    now, docs = state.now_iso(), []
    taken = set()
    for index, attrs in enumerate(items):
        where = prefix or (f"participations[{index}]." if len(items) > 1 else "")
        workspace = state.require_ref("workspaces", attrs.get("workspace_id"), where + "workspace_id")
        user = state.require_ref("users", attrs.get("user_id"), where + "user_id")
        role = attrs.get("role", "maven")
        if role not in ("maven", "buyer"):
            raise validation(where + "role", "role must be maven (provider team) or buyer (client team)")
        role_id = attrs.get("role_id")
        if role_id not in (None, ""):
            state.require_ref("roles", role_id, where + "role_id")
        pair = (workspace["id"], user["id"])
        existing = {(str(p["workspace_id"]), str(p["user_id"])) for p in _participations(state, workspace)}
        if pair in existing or pair in taken:
            raise validation(where + "user_id", f"user {user['id']} already participates in this project")
        taken.add(pair)
        docs.append(
            {
                "id": state.new_id("participations"),
                "workspace_id": workspace["id"],
                "user_id": user["id"],
                "role": role,
                "access": attrs.get("access", "edit_financials"),
                "created_at": now,
                "updated_at": now,
                "_role_id": str(role_id) if role_id not in (None, "") else None,
            }
        )
    state.insert("participations", docs)
    state.emit_many("participation:created", "participations", [(None, doc) for doc in docs])
    return docs


@router.get("/participations")
async def list_participations(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(PARTICIPATION_INCLUDES)
    window = query.window()
    workspace_id = query.text("workspace_id")
    candidates = (
        state.in_workspace("participations", workspace_id)
        if workspace_id
        else [doc["id"] for doc in state.col("participations")]
    )
    user_ids = query.ids("user_id")
    predicates = [p for p in (only_filter(query),) if p is not None]
    if user_ids is not None:
        predicates.append(lambda doc: str(doc["user_id"]) in set(user_ids))
    ids = select(state, "participations", candidates, predicates)
    return respond(
        state,
        "participations",
        page(state, "participations", ids, window),
        total=len(ids),
        window=window,
        includes=PARTICIPATION_INCLUDES,
        names=names,
    )


@router.post("/participations")
async def create_participations(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(PARTICIPATION_INCLUDES)
    items = attribute_sets(await read_body(request), "participation", "participations", 100)
    with state.lock:
        docs = _insert_participations(state, items, "")
    return respond(state, "participations", docs, includes=PARTICIPATION_INCLUDES, names=names)


# --- stories ---------------------------------------------------------------------------------------------


def _story(state: KantataState, attrs: dict[str, Any], prefix: str, position: int) -> Doc:
    workspace = state.require_ref("workspaces", attrs.get("workspace_id"), prefix + "workspace_id")
    title = req_text(attrs, "title", prefix)
    story_type = attrs.get("story_type", "task")
    if story_type not in STORY_TYPES:
        raise validation(prefix + "story_type", f"story_type must be one of {', '.join(STORY_TYPES)}")
    story_state = attrs.get("state", "not started")
    if story_state not in STORY_STATES:
        raise validation(prefix + "state", f"state must be one of {', '.join(STORY_STATES)}")
    parent_id = attrs.get("parent_id")
    if parent_id not in (None, ""):
        parent = state.require_ref("stories", parent_id, prefix + "parent_id")
        if str(parent["workspace_id"]) != workspace["id"]:
            raise validation(prefix + "parent_id", "the parent task belongs to another project")
    start_date, due_date = opt_day(attrs, "start_date", prefix), opt_day(attrs, "due_date", prefix)
    billable = opt_bool(attrs, "billable", not workspace["tasks_default_non_billable"], prefix)
    now = state.now_iso()
    return {
        "id": state.new_id("stories"),
        "title": title,
        "description": opt_text(attrs, "description", prefix),
        "story_type": story_type,
        "state": story_state,
        "status": story_state.title(),
        "billable": billable,
        "fixed_fee": False,
        "archived": False,
        "percentage_complete": 100
        if story_state == "completed"
        else int(attrs.get("percentage_complete") or 0),
        "start_date": start_date,
        "due_date": due_date,
        "position": position,
        "ancestry_depth": 0,
        "budget_estimate_in_cents": attrs.get("budget_estimate_in_cents"),
        "time_estimate_in_minutes": attrs.get("time_estimate_in_minutes"),
        "workspace_id": workspace["id"],
        "created_at": now,
        "updated_at": now,
        "_parent_id": str(parent_id) if parent_id not in (None, "") else None,
    }


@router.get("/stories")
async def list_stories(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(STORY_INCLUDES)
    window = query.window()
    field, descending = query.order(
        [
            f"{f}:{d}"
            for f in ("position", "created_at", "updated_at", "due_date", "start_date", "title")
            for d in ("asc", "desc")
        ],
        "position:asc",
    )
    workspace_id = query.text("workspace_id")

    def build() -> list[str]:
        candidates = (
            state.in_workspace("stories", workspace_id)
            if workspace_id
            else [doc["id"] for doc in state.col("stories")]
        )
        predicates = [p for p in (only_filter(query),) if p is not None]
        predicates += external_reference_filters(state, "Story", query) + created_updated_filters(query)
        story_types = query.ids("with_story_type")
        if story_types is not None:
            predicates.append(lambda doc: doc["story_type"] in story_types)
        if not query.flag("show_archived"):
            predicates.append(lambda doc: not doc["archived"])
        return sort_ids(state, "stories", select(state, "stories", candidates, predicates), field, descending)

    ids = _cache.get_or_build(state, cache_key(request), build)
    return respond(
        state,
        "stories",
        page(state, "stories", ids, window),
        total=len(ids),
        window=window,
        includes=STORY_INCLUDES,
        names=names,
    )


@router.get("/stories/{story_id}")
async def show_story(story_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(STORY_INCLUDES)
    return respond(
        state, "stories", [state.require("stories", story_id)], includes=STORY_INCLUDES, names=names
    )


@router.post("/stories")
async def create_stories(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(STORY_INCLUDES)
    items = attribute_sets(await read_body(request), "story", "stories", 300)
    with state.lock:
        docs: list[Doc] = []
        for index, attrs in enumerate(items):
            prefix = f"stories[{index}]." if len(items) > 1 else ""
            workspace_id = str(attrs.get("workspace_id"))
            position = (
                len(state.in_workspace("stories", workspace_id))
                + 1
                + sum(1 for doc in docs if doc["workspace_id"] == workspace_id)
            )
            docs.append(_story(state, attrs, prefix, position))
        state.insert("stories", docs)
        state.emit_many("story:created", "stories", [(None, doc) for doc in docs])
    return respond(state, "stories", docs, includes=STORY_INCLUDES, names=names)


@router.put("/stories/{story_id}")
async def update_story(story_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(STORY_INCLUDES)
    attrs = single(await read_body(request), "story")
    with state.lock:
        doc = state.require("stories", story_id)
        before = dict(doc)
        if "title" in attrs:
            doc["title"] = req_text(attrs, "title")
        if "description" in attrs:
            doc["description"] = opt_text(attrs, "description")
        for field in ("start_date", "due_date"):
            if field in attrs:
                doc[field] = opt_day(attrs, field)
        if "billable" in attrs:
            doc["billable"] = opt_bool(attrs, "billable", None)
        if "archived" in attrs:
            doc["archived"] = opt_bool(attrs, "archived", None)
        if "budget_estimate_in_cents" in attrs:
            doc["budget_estimate_in_cents"] = (
                None
                if attrs["budget_estimate_in_cents"] in (None, "")
                else req_int(attrs, "budget_estimate_in_cents", minimum=0)
            )
        if "percentage_complete" in attrs:
            percent = req_int(attrs, "percentage_complete", minimum=0)
            if percent > 100:
                raise validation("percentage_complete", "percentage_complete must be between 0 and 100")
            doc["percentage_complete"] = percent
            # Kantata ties the two: 100 % completes the task, 0 % puts it back to not started.
            if percent == 100:
                doc["state"] = "completed"
            elif percent == 0:
                doc["state"] = "not started"
        if "state" in attrs:
            if attrs["state"] not in STORY_STATES:
                raise validation("state", f"state must be one of {', '.join(STORY_STATES)}")
            doc["state"] = attrs["state"]
            if doc["state"] == "completed":
                doc["percentage_complete"] = 100
        doc["status"] = doc["state"].title()
        if public(doc) != public(before):
            doc["updated_at"] = state.now_iso()
            state.save("stories", [doc])
            state.emit("story:updated", "stories", before=before, after=doc)
        if attrs.get("external_reference") is not None:
            # Stories are among the objects that carry external references (External References docs).
            state.put_external_reference(
                "stories", doc["id"], attrs["external_reference"], "external_reference"
            )
    return respond(state, "stories", [doc], includes=STORY_INCLUDES, names=names)


# --- users, roles, account invitations -------------------------------------------------------------------


@router.get("/users")
async def list_users(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(USER_INCLUDES)
    window = query.window()
    term = (query.text("search") or "").lower()
    predicates = [p for p in (only_filter(query),) if p is not None]
    if term:
        predicates.append(
            lambda doc: term in doc["full_name"].lower() or term in doc["email_address"].lower()
        )
    ids = select(state, "users", [doc["id"] for doc in state.col("users")], predicates)
    return respond(
        state,
        "users",
        page(state, "users", ids, window),
        total=len(ids),
        window=window,
        includes=USER_INCLUDES,
        names=names,
    )


@router.get("/users/me")
async def show_me(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(USER_INCLUDES)
    return respond(
        state, "users", [state.require("users", state.api_user_id)], includes=USER_INCLUDES, names=names
    )


@router.get("/users/{user_id}")
async def show_user(user_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(USER_INCLUDES)
    return respond(state, "users", [state.require("users", user_id)], includes=USER_INCLUDES, names=names)


@router.post("/account_invitations")
async def invite_users(request: Request) -> JSONResponse:
    """Kantata creates users by invitation; the sandbox accepts each one at once, so the user exists."""
    state = kantata(request)
    items = attribute_sets(await read_body(request), "account_invitation", "account_invitations", 100)
    with state.lock:
        known = {user["email_address"].lower() for user in state.col("users")}
        users, invitations = [], []
        for index, attrs in enumerate(items):
            prefix = f"account_invitations[{index}]." if len(items) > 1 else ""
            email = req_text(attrs, "email_address", prefix)
            if email.lower() in known:
                raise validation(prefix + "email_address", f"{email} is already a member of this account")
            known.add(email.lower())
            role_id = attrs.get("role_id")
            if role_id not in (None, ""):
                state.require_ref("roles", role_id, prefix + "role_id")
            now = state.now_iso()
            user = {
                "id": state.new_id("users"),
                "full_name": req_text(attrs, "full_name", prefix),
                "email_address": email,
                "headline": attrs.get("headline"),
                "photo_path": None,
                "account_id": int(state.account_id),
                "created_at": now,
                "updated_at": now,
                "_role_id": str(role_id) if role_id not in (None, "") else None,
            }
            users.append(user)
            invitations.append(
                {
                    "id": state.new_id("account_invitations"),
                    "email_address": email,
                    "full_name": user["full_name"],
                    "role_id": user["_role_id"],
                    "user_id": user["id"],
                    "accepted": True,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        state.insert("users", users)
        state.insert("account_invitations", invitations)
        state.emit_many("user:created", "users", [(None, user) for user in users])
    return respond(state, "account_invitations", invitations)


@router.get("/roles")
async def list_roles(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    window = query.window()
    predicates = [p for p in (only_filter(query),) if p is not None]
    ids = select(state, "roles", [doc["id"] for doc in state.col("roles")], predicates)
    return respond(state, "roles", page(state, "roles", ids, window), total=len(ids), window=window)


@router.post("/roles")
async def create_role(request: Request) -> JSONResponse:
    state = kantata(request)
    attrs = single(await read_body(request), "role")
    with state.lock:
        name = req_text(attrs, "name")
        if any(role["name"].lower() == name.lower() for role in state.col("roles")):
            raise validation("name", f"a role named {name!r} already exists")
        now = state.now_iso()
        doc = {
            "id": state.new_id("roles"),
            "name": name,
            "deleted_at": None,
            "created_at": now,
            "updated_at": now,
        }
        state.insert("roles", [doc])
        state.emit("role:created", "roles", before=None, after=doc)
    return respond(state, "roles", [doc])
