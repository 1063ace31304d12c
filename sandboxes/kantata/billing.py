"""Kantata's own billing records: invoices, and the rate card hierarchy that prices time.

Invoices follow https://developer.kantata.com/kantata/specification (Invoices): an invoice holds time
entries and expenses, each of which can be on one invoice only, and only approved work can be invoiced.
Rate cards follow the Rate Card Sets / Set Versions / Rate Cards / Rate Card Versions / Rate Card Roles
references: a set version takes effect on its `effective_date` and holds one rate card version per card.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sandboxes.kantata.access import kantata, require_token
from sandboxes.kantata.common import (
    Predicate,
    attribute_sets,
    created_updated_filters,
    currency_fields,
    external_reference_filters,
    only_filter,
    opt_bool,
    opt_day,
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
from sandboxes.kantata.errors import bad_request, validation, validations
from sandboxes.kantata.query import Query
from sandboxes.kantata.state import Doc, KantataState

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

INVOICE_INCLUDES: dict[str, Include] = {
    "time_entries": many("time_entries", "time_entry_ids", lambda state, doc: list(doc["_time_entry_ids"])),
    "expenses": many("expenses", "expense_ids", lambda state, doc: list(doc["_expense_ids"])),
    "workspaces": many("workspaces", "workspace_ids", lambda state, doc: list(doc["_workspace_ids"])),
    "user": one("users", "user_id", "_user_id"),
    "external_references": external_references(),
}


def _invoice_value(entry: Doc) -> int:
    return round(entry["time_in_minutes"] * (entry["rate_in_cents"] or 0) / 60)


def _invoice_ids(attrs: dict[str, Any], field: str) -> list[str]:
    raw = attrs.get(field) or []
    if not isinstance(raw, list):
        raise validation(field, f"{field} must be an array of ids")
    return [str(item) for item in raw]


@router.post("/invoices")
async def create_invoice(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(INVOICE_INCLUDES)
    attrs = single(await read_body(request), "invoice")
    with state.lock:
        workspace_ids = [str(w) for w in attrs.get("workspace_ids") or []] or (
            [str(attrs["workspace_id"])] if attrs.get("workspace_id") not in (None, "") else []
        )
        if not workspace_ids:
            raise validation("workspace_id", "Either workspace_id or workspace_ids is required")
        workspaces = [state.require_ref("workspaces", wid, "workspace_id") for wid in workspace_ids]
        currencies = {workspace["currency"] for workspace in workspaces}
        if len(currencies) > 1:
            raise validation("workspace_ids", "all projects on one invoice must share a currency")
        payment_schedule = req_int(attrs, "payment_schedule", minimum=0)
        for unsupported in ("additional_items", "fixed_fee_items", "billing_milestone_ids"):
            if attrs.get(unsupported):
                raise validation(unsupported, f"{unsupported} are not supported by the sandbox")
        time_ids, expense_ids = _invoice_ids(attrs, "time_entry_ids"), _invoice_ids(attrs, "expense_ids")
        if not time_ids and not expense_ids:
            raise validation("time_entry_ids", "An invoice needs at least one time entry or expense")
        problems: list[tuple[str, str]] = []
        entries = _line_items(state, "time_entries", time_ids, set(workspace_ids), problems)
        expenses = _line_items(state, "expenses", expense_ids, set(workspace_ids), problems)
        if problems:
            raise validations(problems)
        number = attrs.get("user_invoice_number")
        if number is None:
            number = _next_invoice_number(state)
        else:
            number = req_int(attrs, "user_invoice_number", minimum=1)
            if any(invoice["user_invoice_number"] == number for invoice in state.col("invoices")):
                raise validation("user_invoice_number", f"invoice number {number} is already taken")
        invoice_date = opt_day(attrs, "invoice_date") or state.today()
        draft = opt_bool(attrs, "draft", False)
        now = state.now_iso()
        doc = {
            "id": state.new_id("invoices"),
            "user_invoice_number": number,
            "title": f"{'Draft Invoice' if draft else 'Invoice'} #{number}",
            "user_invoice_title": opt_text(attrs, "user_invoice_title"),
            "invoice_date": invoice_date,
            "due_date": (date.fromisoformat(invoice_date) + timedelta(days=payment_schedule)).isoformat(),
            "payment_schedule": payment_schedule,
            "draft": draft,
            "status": "new",
            "message": opt_text(attrs, "message"),
            "purchase_order": opt_text(attrs, "purchase_order"),
            "project_code": opt_text(attrs, "project_code"),
            "tax_rate": 0.0,
            "balance_in_cents": sum(_invoice_value(e) for e in entries)
            + sum(x["amount_in_cents"] for x in expenses),
            **currency_fields(workspaces[0]["currency"]),
            "created_at": now,
            "updated_at": now,
            "_time_entry_ids": [e["id"] for e in entries],
            "_expense_ids": [x["id"] for x in expenses],
            "_workspace_ids": workspace_ids,
            "_user_id": state.api_user_id,
        }
        state.insert("invoices", [doc])
        if attrs.get("external_reference") is not None:
            state.put_external_reference(
                "invoices", doc["id"], attrs["external_reference"], "external_reference"
            )
        state.emit("invoice:created", "invoices", before=None, after=doc)
        for key, items, event_type in (
            (("time_entries", entries, "time_entry:updated")),
            ("expenses", expenses, "expense:updated"),
        ):
            pairs = []
            for item in items:
                previous = dict(item)
                item.update(is_invoiced=True, _invoice_id=doc["id"], updated_at=now)
                pairs.append((previous, item))
            state.save(key, items)
            state.emit_many(event_type, key, pairs)
    return respond(state, "invoices", [doc], includes=INVOICE_INCLUDES, names=names)


def _line_items(
    state: KantataState, key: str, ids: list[str], workspace_ids: set[str], problems: list[tuple[str, str]]
) -> list[Doc]:
    field = "time_entry_ids" if key == "time_entries" else "expense_ids"
    noun = "time entry" if key == "time_entries" else "expense"
    items = []
    for index, item_id in enumerate(ids):
        item = state.get(key, item_id)
        where = f"{field}[{index}]"
        if item is None:
            problems.append((where, f"{noun} {item_id} does not exist"))
        elif item["workspace_id"] not in workspace_ids:
            problems.append((where, f"{noun} {item_id} belongs to another project"))
        elif item["is_invoiced"]:
            problems.append((where, f"{noun} {item_id} is already on invoice {item['_invoice_id']}"))
        elif not item["approved"]:
            problems.append((where, f"{noun} {item_id} has not been approved"))
        elif not item["billable"]:
            problems.append((where, f"{noun} {item_id} is not billable"))
        else:
            items.append(item)
    return items


def _next_invoice_number(state: KantataState) -> int:
    return max((invoice["user_invoice_number"] for invoice in state.col("invoices")), default=1000) + 1


@router.get("/invoices")
async def list_invoices(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(INVOICE_INCLUDES)
    window = query.window()
    field, descending = query.order(
        [f"{f}:{d}" for f in ("created_at", "id", "invoice_date", "updated_at") for d in ("asc", "desc")],
        "created_at:desc",
    )
    predicates: list[Predicate] = [p for p in (only_filter(query),) if p is not None]
    predicates += external_reference_filters(state, "Invoice", query) + created_updated_filters(query)
    workspace_ids = query.ids("workspace_id")
    if workspace_ids is not None:
        predicates.append(lambda doc: bool(set(doc["_workspace_ids"]) & set(workspace_ids)))
    numbers = query.ids("user_invoice_number")
    if numbers is not None:
        predicates.append(lambda doc: str(doc["user_invoice_number"]) in set(numbers))
    if query.flag("without_drafts"):
        predicates.append(lambda doc: not doc["draft"])
    ids = select(state, "invoices", [doc["id"] for doc in state.col("invoices")], predicates)
    ids = (
        sorted(ids, key=int, reverse=descending)
        if field in ("id", "created_at")
        else sort_ids(state, "invoices", ids, field, descending)
    )
    return respond(
        state,
        "invoices",
        page(state, "invoices", ids, window),
        total=len(ids),
        window=window,
        includes=INVOICE_INCLUDES,
        names=names,
    )


@router.get("/invoices/next_invoice_number")
async def next_invoice_number(request: Request) -> JSONResponse:
    return JSONResponse({"next_invoice_number": str(_next_invoice_number(kantata(request)))})


@router.get("/invoices/{invoice_id}")
async def show_invoice(invoice_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(INVOICE_INCLUDES)
    return respond(
        state, "invoices", [state.require("invoices", invoice_id)], includes=INVOICE_INCLUDES, names=names
    )


@router.put("/invoices/{invoice_id}")
async def update_invoice(invoice_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(INVOICE_INCLUDES)
    attrs = single(await read_body(request), "invoice")
    with state.lock:
        doc = state.require("invoices", invoice_id)
        before = dict(doc)
        for field in ("message", "user_invoice_title", "purchase_order", "project_code"):
            if field in attrs:
                doc[field] = opt_text(attrs, field)
        if "draft" in attrs:
            draft = opt_bool(attrs, "draft", None)
            if draft and not doc["draft"]:
                raise validation("draft", "a submitted invoice cannot go back to draft")
            doc["draft"] = bool(draft)
            doc["title"] = f"{'Draft Invoice' if doc['draft'] else 'Invoice'} #{doc['user_invoice_number']}"
        if attrs.get("external_reference") is not None:
            state.put_external_reference(
                "invoices", doc["id"], attrs["external_reference"], "external_reference"
            )
        doc["updated_at"] = state.now_iso()
        state.save("invoices", [doc])
        state.emit("invoice:updated", "invoices", before=before, after=doc)
    return respond(state, "invoices", [doc], includes=INVOICE_INCLUDES, names=names)


# --- rate cards -------------------------------------------------------------------------------------------

SET_INCLUDES: dict[str, Include] = {
    "rate_card_set_versions": many(
        "rate_card_set_versions",
        "rate_card_set_version_ids",
        lambda state, doc: _children(state, "rate_card_set_versions", "rate_card_set_id", doc["id"]),
    ),
    "rate_cards": many(
        "rate_cards",
        "rate_card_ids",
        lambda state, doc: _children(state, "rate_cards", "rate_card_set_id", doc["id"]),
    ),
}
SET_VERSION_INCLUDES: dict[str, Include] = {
    "rate_card_set": one("rate_card_sets", "rate_card_set_id"),
    "rate_card_versions": many(
        "rate_card_versions",
        "rate_card_version_ids",
        lambda state, doc: _children(state, "rate_card_versions", "rate_card_set_version_id", doc["id"]),
    ),
}
RATE_CARD_INCLUDES: dict[str, Include] = {
    "rate_card_set": one("rate_card_sets", "rate_card_set_id"),
    "rate_card_versions": many(
        "rate_card_versions",
        "rate_card_version_ids",
        lambda state, doc: _children(state, "rate_card_versions", "rate_card_id", doc["id"]),
    ),
}
CARD_VERSION_INCLUDES: dict[str, Include] = {
    "rate_card": one("rate_cards", "rate_card_id"),
    "rate_card_set_version": one("rate_card_set_versions", "rate_card_set_version_id"),
    "rate_card_roles": many(
        "rate_card_roles",
        "rate_card_role_ids",
        lambda state, doc: _children(state, "rate_card_roles", "rate_card_version_id", doc["id"]),
    ),
}
ROLE_RATE_INCLUDES: dict[str, Include] = {
    "role": one("roles", "role_id"),
    "rate_card_version": one("rate_card_versions", "rate_card_version_id"),
}


def _children(state: KantataState, key: str, parent_field: str, parent_id: str) -> list[str]:
    return [doc["id"] for doc in state.col(key) if str(doc[parent_field]) == str(parent_id)]


def _listing(
    request: Request, key: str, includes: dict[str, Include], filters: dict[str, str]
) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(includes)
    window = query.window()
    predicates: list[Predicate] = [p for p in (only_filter(query),) if p is not None]
    for param, field in filters.items():
        wanted = query.ids(param)
        if wanted is not None:
            predicates.append(_member(field, set(wanted)))
    if key == "rate_card_set_versions":
        effective_on = query.day("effective_on_date")
        if effective_on is not None:
            predicates.append(lambda doc: doc["id"] in _effective_versions(state, effective_on.isoformat()))
    ids = select(state, key, sorted((doc["id"] for doc in state.col(key)), key=int), predicates)
    return respond(
        state,
        key,
        page(state, key, ids, window),
        total=len(ids),
        window=window,
        includes=includes,
        names=names,
    )


def _effective_versions(state: KantataState, day: str) -> set[str]:
    latest: dict[str, Doc] = {}
    for version in state.col("rate_card_set_versions"):
        if version["effective_date"] > day:
            continue
        current = latest.get(str(version["rate_card_set_id"]))
        if current is None or version["effective_date"] > current["effective_date"]:
            latest[str(version["rate_card_set_id"])] = version
    return {version["id"] for version in latest.values()}


@router.get("/rate_card_sets")
async def list_rate_card_sets(request: Request) -> JSONResponse:
    return _listing(request, "rate_card_sets", SET_INCLUDES, {})


@router.post("/rate_card_sets")
async def create_rate_card_set(request: Request) -> JSONResponse:
    state = kantata(request)
    attrs = single(await read_body(request), "rate_card_set")
    with state.lock:
        title = req_text(attrs, "title")
        if any(rate_set["title"] == title for rate_set in state.col("rate_card_sets")):
            raise validation("title", f"a rate card set titled {title!r} already exists")
        now = state.now_iso()
        doc = {
            "id": state.new_id("rate_card_sets"),
            "title": title,
            "default": False,
            "created_at": now,
            "updated_at": now,
        }
        state.insert("rate_card_sets", [doc])
    return respond(state, "rate_card_sets", [doc])


@router.get("/rate_card_set_versions")
async def list_rate_card_set_versions(request: Request) -> JSONResponse:
    return _listing(
        request, "rate_card_set_versions", SET_VERSION_INCLUDES, {"rate_card_set_id": "rate_card_set_id"}
    )


@router.post("/rate_card_set_versions")
async def create_rate_card_set_version(request: Request) -> JSONResponse:
    """Creating (or cloning, with `clone_id`) a set version gives each card of the set a new version."""
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(SET_VERSION_INCLUDES)
    attrs = single(await read_body(request), "rate_card_set_version")
    with state.lock:
        rate_set = state.require_ref("rate_card_sets", attrs.get("rate_card_set_id"), "rate_card_set_id")
        effective = req_day(attrs, "effective_date")
        if any(
            str(v["rate_card_set_id"]) == rate_set["id"] and v["effective_date"] == effective
            for v in state.col("rate_card_set_versions")
        ):
            raise validation("effective_date", f"this set already has a version effective {effective}")
        clone_id = query.text("clone_id")
        source = state.require("rate_card_set_versions", clone_id) if clone_id else None
        if source is not None and str(source["rate_card_set_id"]) != rate_set["id"]:
            raise bad_request("clone_id names a version of another rate card set")
        now = state.now_iso()
        doc = {
            "id": state.new_id("rate_card_set_versions"),
            "rate_card_set_id": rate_set["id"],
            "effective_date": effective,
            "published_at": now,
            "created_at": now,
            "updated_at": now,
        }
        state.insert("rate_card_set_versions", [doc])
        for card in [c for c in state.col("rate_cards") if str(c["rate_card_set_id"]) == rate_set["id"]]:
            old = next(
                (
                    v
                    for v in state.col("rate_card_versions")
                    if source is not None
                    and str(v["rate_card_set_version_id"]) == source["id"]
                    and str(v["rate_card_id"]) == card["id"]
                ),
                None,
            )
            version = _card_version(state, card["id"], doc["id"], old["default_rate"] if old else None)
            if old is not None:
                state.insert(
                    "rate_card_roles",
                    [
                        {
                            **role_rate,
                            "id": state.new_id("rate_card_roles"),
                            "rate_card_version_id": version["id"],
                            "created_at": now,
                            "updated_at": now,
                        }
                        for role_rate in state.col("rate_card_roles")
                        if str(role_rate["rate_card_version_id"]) == old["id"]
                    ],
                )
    return respond(state, "rate_card_set_versions", [doc], includes=SET_VERSION_INCLUDES, names=names)


def _card_version(state: KantataState, card_id: str, set_version_id: str, default_rate: int | None) -> Doc:
    now = state.now_iso()
    version = {
        "id": state.new_id("rate_card_versions"),
        "rate_card_id": card_id,
        "rate_card_set_version_id": set_version_id,
        "default_rate": default_rate,
        "created_at": now,
        "updated_at": now,
    }
    state.insert("rate_card_versions", [version])
    return version


@router.get("/rate_cards")
async def list_rate_cards(request: Request) -> JSONResponse:
    return _listing(request, "rate_cards", RATE_CARD_INCLUDES, {"rate_card_set_id": "rate_card_set_id"})


@router.get("/rate_cards/{card_id}")
async def show_rate_card(card_id: str, request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(RATE_CARD_INCLUDES)
    return respond(
        state, "rate_cards", [state.require("rate_cards", card_id)], includes=RATE_CARD_INCLUDES, names=names
    )


@router.post("/rate_cards")
async def create_rate_card(request: Request) -> JSONResponse:
    """A new card (one currency) gets a version in every version of its set."""
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(RATE_CARD_INCLUDES)
    attrs = single(await read_body(request), "rate_card")
    with state.lock:
        rate_set = state.require_ref("rate_card_sets", attrs.get("rate_card_set_id"), "rate_card_set_id")
        currency = req_text(attrs, "currency")
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise validation("currency", f"currency must be an ISO 4217 code, got {currency!r}")
        if any(
            str(c["rate_card_set_id"]) == rate_set["id"] and c["currency"] == currency
            for c in state.col("rate_cards")
        ):
            raise validation("currency", f"this set already has a {currency} rate card")
        now = state.now_iso()
        doc = {
            "id": state.new_id("rate_cards"),
            "rate_card_set_id": rate_set["id"],
            "currency": currency,
            "title": attrs.get("title") or f"{rate_set['title']} ({currency})",
            "created_at": now,
            "updated_at": now,
        }
        state.insert("rate_cards", [doc])
        default_rate = attrs.get("default_rate")
        for set_version in [
            v for v in state.col("rate_card_set_versions") if str(v["rate_card_set_id"]) == rate_set["id"]
        ]:
            _card_version(
                state,
                doc["id"],
                set_version["id"],
                req_int(attrs, "default_rate", minimum=0) if default_rate is not None else None,
            )
    return respond(state, "rate_cards", [doc], includes=RATE_CARD_INCLUDES, names=names)


@router.get("/rate_card_versions")
async def list_rate_card_versions(request: Request) -> JSONResponse:
    return _listing(
        request,
        "rate_card_versions",
        CARD_VERSION_INCLUDES,
        {"rate_card_id": "rate_card_id", "rate_card_set_version_id": "rate_card_set_version_id"},
    )


@router.put("/rate_card_versions/{version_id}")
async def update_rate_card_version(version_id: str, request: Request) -> JSONResponse:
    state = kantata(request)
    attrs = single(await read_body(request), "rate_card_version")
    with state.lock:
        doc = state.require("rate_card_versions", version_id)
        doc.update(default_rate=req_int(attrs, "default_rate", minimum=0), updated_at=state.now_iso())
        state.save("rate_card_versions", [doc])
    return respond(state, "rate_card_versions", [doc])


@router.get("/rate_card_roles")
async def list_rate_card_roles(request: Request) -> JSONResponse:
    return _listing(
        request, "rate_card_roles", ROLE_RATE_INCLUDES, {"rate_card_version_id": "rate_card_version_id"}
    )


@router.post("/rate_card_roles")
async def create_rate_card_roles(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(ROLE_RATE_INCLUDES)
    items = attribute_sets(await read_body(request), "rate_card_role", "rate_card_roles", 100)
    with state.lock:
        docs, now = [], state.now_iso()
        taken = {(str(r["rate_card_version_id"]), str(r["role_id"])) for r in state.col("rate_card_roles")}
        for index, attrs in enumerate(items):
            prefix = f"rate_card_roles[{index}]." if len(items) > 1 else ""
            version = state.require_ref(
                "rate_card_versions", attrs.get("rate_card_version_id"), prefix + "rate_card_version_id"
            )
            role = state.require_ref("roles", attrs.get("role_id"), prefix + "role_id")
            if (version["id"], role["id"]) in taken:
                raise validation(
                    prefix + "role_id", f"this rate card version already has a rate for {role['name']}"
                )
            taken.add((version["id"], role["id"]))
            docs.append(
                {
                    "id": state.new_id("rate_card_roles"),
                    "rate_card_version_id": version["id"],
                    "role_id": role["id"],
                    "rate": req_int(attrs, "rate", prefix, minimum=0),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        state.insert("rate_card_roles", docs)
    return respond(state, "rate_card_roles", docs, includes=ROLE_RATE_INCLUDES, names=names)


@router.put("/rate_card_roles/{role_rate_id}")
async def update_rate_card_role(role_rate_id: str, request: Request) -> JSONResponse:
    state = kantata(request)
    attrs = single(await read_body(request), "rate_card_role")
    with state.lock:
        doc = state.require("rate_card_roles", role_rate_id)
        doc.update(rate=req_int(attrs, "rate", minimum=0), updated_at=state.now_iso())
        state.save("rate_card_roles", [doc])
    return respond(state, "rate_card_roles", [doc])


def _member(field: str, wanted: set[str]) -> Predicate:
    return lambda doc: str(doc[field]) in wanted
