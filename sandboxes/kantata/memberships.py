"""Account memberships and cost rates: who works for the account, in which default role, at what cost.

- Every user of the account has one account membership (developer.kantata.com, "Account Memberships"). The
  sandbox creates it the first time memberships are read, so users invited before this module existed have
  one too. `GET /account_memberships` leaves disabled members out unless `only_inactive` or
  `is_active=false` asks for them; `include=user,default_role,cost_rates` side-loads the associations, whose
  ids (`default_role_id`, `cost_rate_ids`) only appear when included. `PUT /account_memberships/{id}/disable`
  makes a member inactive ("Make a user inactive").
- A cost rate is a member's hourly cost in one currency, in subunits ("Cost Rates"). `POST /cost_rates` takes
  `cost_rate` or up to 100 `cost_rates`; one that exists for the same membership and currency is overridden,
  as the docs say, which makes the call an update too. `GET /cost_rates` lists them (order created_at).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sandboxes.kantata.access import kantata, require_token
from sandboxes.kantata.common import (
    as_int,
    attribute_sets,
    created_updated_filters,
    only_filter,
    page,
    read_body,
    req_text,
    select,
    sort_ids,
)
from sandboxes.kantata.envelope import Include, many, one, respond
from sandboxes.kantata.errors import not_found, validation
from sandboxes.kantata.query import Query
from sandboxes.kantata.state import Doc, KantataState

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

MEMBERSHIPS = "account_memberships"
COST_RATES = "cost_rates"
FIRST_MEMBERSHIP_ID = 14_400_001
FIRST_COST_RATE_ID = 15_500_001
_BULK_LIMIT = 100


def _cost_rates_of(state: KantataState, membership: Doc) -> list[str]:
    return sorted(
        (doc["id"] for doc in state.col(COST_RATES) if doc["account_membership_id"] == int(membership["id"])),
        key=int,
    )


MEMBERSHIP_INCLUDES: dict[str, Include] = {
    "user": one("users", "user_id"),
    "default_role": one("roles", "default_role_id", "_role_id"),
    "cost_rates": many(COST_RATES, "cost_rate_ids", _cost_rates_of),
}
COST_RATE_INCLUDES: dict[str, Include] = {
    "account_membership": one(MEMBERSHIPS, "account_membership_id"),
}


def _new_id(state: KantataState, key: str, first: int) -> str:
    return str(state.store.next_number(key, start=first))


def ensure_memberships(state: KantataState) -> None:
    """One membership per user: users are invited elsewhere in the sandbox, so they are matched up here."""
    with state.lock:
        members = {str(doc["user_id"]) for doc in state.col(MEMBERSHIPS)}
        new = []
        for user in sorted(state.col("users"), key=lambda doc: int(doc["id"])):
            if user["id"] in members:
                continue
            new.append(
                {
                    "id": _new_id(state, MEMBERSHIPS, FIRST_MEMBERSHIP_ID),
                    "account_id": int(state.account_id),
                    "user_id": user["id"],
                    "permission": "administrator" if user["id"] == state.api_user_id else "collaborator",
                    "access_level": "full",
                    "disabled_at": None,
                    "created_at": user["created_at"],
                    "updated_at": user["created_at"],
                    "_role_id": user.get("_role_id"),
                }
            )
        if new:
            state.store.collection(MEMBERSHIPS).put_many([(doc["id"], doc) for doc in new])
            state.version += 1


def _membership(state: KantataState, membership_id: str) -> Doc:
    ensure_memberships(state)
    doc = state.get(MEMBERSHIPS, membership_id)
    if doc is None:
        raise not_found()
    return doc


@router.get("/account_memberships")
async def list_memberships(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(MEMBERSHIP_INCLUDES)
    window = query.window()
    field, descending = query.order(
        [f"{f}:{d}" for f in ("created_at", "updated_at") for d in ("asc", "desc")], "created_at:desc"
    )
    ensure_memberships(state)
    predicates = [p for p in (only_filter(query),) if p is not None] + created_updated_filters(query)
    if query.flag("only_inactive"):
        predicates.append(lambda doc: doc["disabled_at"] is not None)
    elif query.flag("is_active") is not False:
        predicates.append(lambda doc: doc["disabled_at"] is None)
    user_id = query.text("by_user_id")
    if user_id is not None:
        predicates.append(lambda doc: str(doc["user_id"]) == user_id)
    ids = select(state, MEMBERSHIPS, [doc["id"] for doc in state.col(MEMBERSHIPS)], predicates)
    ids = sort_ids(state, MEMBERSHIPS, ids, field, descending)
    return respond(
        state,
        MEMBERSHIPS,
        page(state, MEMBERSHIPS, ids, window),
        total=len(ids),
        window=window,
        includes=MEMBERSHIP_INCLUDES,
        names=names,
    )


@router.get("/account_memberships/{membership_id}")
async def show_membership(membership_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(MEMBERSHIP_INCLUDES)
    doc = _membership(state, membership_id)
    if doc["disabled_at"] is not None and query.flag("is_active") is not False:
        raise not_found()
    return respond(state, MEMBERSHIPS, [doc], includes=MEMBERSHIP_INCLUDES, names=names)


@router.put("/account_memberships/{membership_id}/disable")
async def disable_membership(membership_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(MEMBERSHIP_INCLUDES)
    with state.lock:
        doc = _membership(state, membership_id)
        if doc["disabled_at"] is None:
            now = state.now_iso()
            doc = {**doc, "disabled_at": now, "updated_at": now}
            state.save(MEMBERSHIPS, [doc])
    return respond(state, MEMBERSHIPS, [doc], includes=MEMBERSHIP_INCLUDES, names=names)


@router.get("/cost_rates")
async def list_cost_rates(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(COST_RATE_INCLUDES)
    window = query.window()
    _, descending = query.order(["created_at:asc", "created_at:desc"], "created_at:asc")
    predicates = [p for p in (only_filter(query),) if p is not None] + created_updated_filters(query)
    ids = select(state, COST_RATES, [doc["id"] for doc in state.col(COST_RATES)], predicates)
    ids = sorted(ids, key=int, reverse=descending)
    return respond(
        state,
        COST_RATES,
        page(state, COST_RATES, ids, window),
        total=len(ids),
        window=window,
        includes=COST_RATE_INCLUDES,
        names=names,
    )


@router.post("/cost_rates")
async def create_cost_rates(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(COST_RATE_INCLUDES)
    items = attribute_sets(await read_body(request), "cost_rate", "cost_rates", _BULK_LIMIT)
    ensure_memberships(state)
    with state.lock:
        saved: list[Doc] = []
        for index, attrs in enumerate(items):
            prefix = f"cost_rates[{index}]." if len(items) > 1 else ""
            membership_id = as_int(attrs.get("account_membership_id"), prefix + "account_membership_id", 1)
            if state.get(MEMBERSHIPS, str(membership_id)) is None:
                raise validation(
                    prefix + "account_membership_id", f"account membership {membership_id} does not exist"
                )
            currency = req_text(attrs, "currency", prefix).upper()
            if len(currency) != 3 or not currency.isalpha():
                raise validation(prefix + "currency", f"currency must be an ISO code, got {currency!r}")
            amount = as_int(attrs.get("amount_in_subunits"), prefix + "amount_in_subunits", 0)
            now = state.now_iso()
            existing = next(
                (
                    doc
                    for doc in state.col(COST_RATES)
                    if doc["account_membership_id"] == membership_id and doc["currency"] == currency
                ),
                None,
            )
            if existing is not None:
                doc = {**existing, "amount_in_subunits": amount, "updated_at": now}
            else:
                doc = {
                    "id": _new_id(state, COST_RATES, FIRST_COST_RATE_ID),
                    "account_membership_id": membership_id,
                    "currency": currency,
                    "amount_in_subunits": amount,
                    "in_use": False,
                    "created_at": now,
                    "updated_at": now,
                }
            state.store.collection(COST_RATES).put_many([(doc["id"], doc)])
            saved.append(doc)
        state.version += 1
    return respond(state, COST_RATES, saved, includes=COST_RATE_INCLUDES, names=names)
