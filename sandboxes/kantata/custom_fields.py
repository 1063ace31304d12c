"""Custom fields, their values, and external references.

Value formats follow Kantata's Custom Field Values reference: string `"foo"`, date `"2014-02-25"`,
number `13`, currency `[998, "USD"]` (subunits and ISO code). Creating a value for a subject that already
has one overrides it, so a write is safe to repeat.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from sandboxes.kantata.access import kantata, require_token
from sandboxes.kantata.common import (
    Predicate,
    attribute_sets,
    only_filter,
    page,
    read_body,
    req_text,
    select,
    single,
)
from sandboxes.kantata.currency import from_subunits
from sandboxes.kantata.envelope import Include, external_references, one, respond
from sandboxes.kantata.errors import bad_request, validation
from sandboxes.kantata.query import Query, parse_day
from sandboxes.kantata.state import COLLECTION_OF_SUBJECT, SUBJECT_TYPES, Doc, KantataState, public

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require_token)])

VALUE_TYPES = ("string", "date", "number", "currency", "single", "multi")
CUSTOM_FIELD_SUBJECTS = ("Workspace", "Story", "User", "WorkspaceGroup", "Estimate", "Resource")
# Event names per subject for custom field value changes, as in Kantata's event catalogue.
_EVENT_PREFIX = {"Workspace": "workspace", "Story": "story", "User": "user"}

VALUE_INCLUDES: dict[str, Include] = {
    "custom_field": one("custom_fields", "custom_field_id"),
    "external_references": external_references(),
}


def _parse_value(field: Doc, raw: Any, where: str) -> tuple[Any, str]:
    """(stored value, display value) for one written value, or a validation error naming the field."""
    kind = field["value_type"]
    if kind == "string":
        if not isinstance(raw, str):
            raise validation(where, f"{field['name']} takes text")
        return raw, raw
    if kind == "number":
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise validation(where, f"{field['name']} takes a whole number")
        try:
            number = int(raw)
        except ValueError:
            raise validation(where, f"{field['name']} takes a whole number, got {raw!r}") from None
        return number, str(number)
    if kind == "date":
        try:
            day = parse_day(where, str(raw)).isoformat()
        except Exception:
            raise validation(where, f"{field['name']} takes a YYYY-MM-DD date, got {raw!r}") from None
        return day, day
    if kind == "currency":
        value = raw
        if isinstance(raw, str):
            try:
                value = json.loads(raw)
            except ValueError:
                raise validation(where, f'{field["name"]} takes [subunits, "CUR"], got {raw!r}') from None
        if (
            not isinstance(value, list)
            or len(value) != 2
            or isinstance(value[0], bool)
            or not isinstance(value[0], int)
            or not isinstance(value[1], str)
            or len(value[1]) != 3
        ):
            raise validation(
                where, f'{field["name"]} takes [subunits, "CUR"], e.g. [998, "USD"], got {raw!r}'
            )
        return [value[0], value[1]], f"{from_subunits(value[0], value[1])} {value[1]}"
    raise validation(
        where, f"{field['name']} is a {kind} field; choice values are not supported by the sandbox"
    )


def set_value(
    state: KantataState, subject_type: str, subject_id: str, field_id: Any, raw: Any, where: str
) -> Doc:
    field = state.require_ref("custom_fields", field_id, where + "custom_field_id")
    if field["subject_type"] != subject_type:
        raise validation(where + "custom_field_id", f"{field['name']} is a {field['subject_type']} field")
    value, display = _parse_value(field, raw, where + "value")
    existing = state.custom_field_value(subject_type, subject_id, field["id"])
    now = state.now_iso()
    prefix = _EVENT_PREFIX.get(subject_type)
    subject_key = COLLECTION_OF_SUBJECT.get(subject_type)
    if existing is not None:
        before = dict(existing)
        existing.update(value=value, display_value=display, updated_at=now)
        state.save("custom_field_values", [existing])
        if prefix and subject_key and before["value"] != value:
            state.emit(
                f"{prefix}:custom_field_value_updated", "custom_field_values", before=before, after=existing
            )
        return existing
    doc = {
        "id": state.new_id("custom_field_values"),
        "custom_field_id": field["id"],
        "custom_field_name": field["name"],
        "subject_type": subject_type,
        "subject_id": int(subject_id),
        "type": field["value_type"],
        "value": value,
        "display_value": display,
        "can_edit": True,
        "setter_id": state.api_user_id,
        "created_at": now,
        "updated_at": now,
    }
    state.insert("custom_field_values", [doc])
    if prefix and subject_key:
        state.emit(f"{prefix}:custom_field_value_created", "custom_field_values", before=None, after=doc)
    return doc


def apply_custom_fields(state: KantataState, key: str, subject: Doc, items: Any, prefix: str) -> None:
    """The `custom_fields: [{custom_field_id, value}]` attribute of a create or update."""
    if items is None:
        return
    if not isinstance(items, list):
        raise validation(
            prefix + "custom_fields", "custom_fields must be an array of {custom_field_id, value}"
        )
    for index, item in enumerate(items):
        where = f"{prefix}custom_fields[{index}]."
        if not isinstance(item, dict):
            raise validation(where[:-1], "each custom field must be an object")
        set_value(
            state, SUBJECT_TYPES[key], subject["id"], item.get("custom_field_id"), item.get("value"), where
        )


@router.get("/custom_fields")
async def list_custom_fields(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    window = query.window()
    subjects = query.ids("subject_types")
    predicates = [p for p in (only_filter(query),) if p is not None]
    if subjects is not None:
        predicates.append(lambda doc: doc["subject_type"] in subjects)
    ids = select(state, "custom_fields", [doc["id"] for doc in state.col("custom_fields")], predicates)
    return respond(
        state, "custom_fields", page(state, "custom_fields", ids, window), total=len(ids), window=window
    )


@router.post("/custom_fields")
async def create_custom_field(request: Request) -> JSONResponse:
    state = kantata(request)
    attrs = single(await read_body(request), "custom_field")
    with state.lock:
        name = req_text(attrs, "name")
        subject_type = attrs.get("subject_type")
        if subject_type not in CUSTOM_FIELD_SUBJECTS:
            raise validation(
                "subject_type", f"subject_type must be one of {', '.join(CUSTOM_FIELD_SUBJECTS)}"
            )
        value_type = attrs.get("value_type")
        if value_type not in VALUE_TYPES:
            raise validation("value_type", f"value_type must be one of {', '.join(VALUE_TYPES)}")
        if any(f["name"] == name and f["subject_type"] == subject_type for f in state.col("custom_fields")):
            raise validation("name", f"a {subject_type} custom field named {name!r} already exists")
        now = state.now_iso()
        doc = {
            "id": state.new_id("custom_fields"),
            "name": name,
            "subject_type": subject_type,
            "value_type": value_type,
            "read_access": attrs.get("read_access", "project_collaboration"),
            "write_access": attrs.get("write_access", "project_admin"),
            "can_edit": True,
            "created_at": now,
            "updated_at": now,
        }
        state.insert("custom_fields", [doc])
    return respond(state, "custom_fields", [doc])


@router.get("/custom_field_values")
async def list_custom_field_values(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(VALUE_INCLUDES)
    window = query.window()
    subject_type = query.text("subject_type")
    if subject_type is None:
        raise bad_request("subject_type is required: one of " + ", ".join(CUSTOM_FIELD_SUBJECTS))
    subject_ids = query.ids("with_subject_id")
    field_ids = query.ids("with_custom_field_id")
    predicates = [p for p in (only_filter(query),) if p is not None]
    if field_ids is not None:
        fields = set(field_ids)
        predicates.append(lambda doc: str(doc["custom_field_id"]) in fields)
    # A look-up by subject reads only those subjects' values (the index is by subject type and id), not
    # every value of the account.
    scope = (
        [doc for subject in dict.fromkeys(subject_ids) for doc in state.values_of(subject_type, subject)]
        if subject_ids is not None
        else [doc for doc in state.col("custom_field_values") if doc["subject_type"] == subject_type]
    )
    matching = [doc for doc in scope if all(p(doc) for p in predicates)]
    # Values come "sorted from less to more recently updated".
    candidates = sorted(matching, key=lambda doc: (doc["updated_at"], int(doc["id"])))
    ids = [doc["id"] for doc in candidates]
    return respond(
        state,
        "custom_field_values",
        page(state, "custom_field_values", ids, window),
        total=len(ids),
        window=window,
        includes=VALUE_INCLUDES,
        names=names,
        shape=_shape_value,
    )


def _shape_value(doc: Doc) -> Doc:
    shaped = public(doc)
    shaped["subject_id"] = doc["subject_id"]
    return shaped


@router.post("/custom_field_values")
async def create_custom_field_values(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    names = query.includes(VALUE_INCLUDES)
    items = attribute_sets(await read_body(request), "custom_field_value", "custom_field_values", 100)
    with state.lock:
        docs = []
        for index, attrs in enumerate(items):
            where = f"custom_field_values[{index}]." if len(items) > 1 else ""
            subject_type = attrs.get("subject_type")
            subject_key = COLLECTION_OF_SUBJECT.get(str(subject_type))
            if subject_type not in CUSTOM_FIELD_SUBJECTS or subject_key is None:
                raise validation(where + "subject_type", "subject_type must be one of Workspace, Story, User")
            subject = state.require_ref(subject_key, attrs.get("subject_id"), where + "subject_id")
            docs.append(
                set_value(
                    state,
                    subject_type,
                    subject["id"],
                    attrs.get("custom_field_id"),
                    attrs.get("value"),
                    where,
                )
            )
    return respond(state, "custom_field_values", docs, includes=VALUE_INCLUDES, names=names)


@router.put("/custom_field_values/{value_id}")
async def update_custom_field_value(value_id: str, request: Request) -> JSONResponse:
    state = kantata(request)
    attrs = single(await read_body(request), "custom_field_value")
    with state.lock:
        doc = state.require("custom_field_values", value_id)
        updated = set_value(
            state, doc["subject_type"], str(doc["subject_id"]), doc["custom_field_id"], attrs.get("value"), ""
        )
    return respond(state, "custom_field_values", [updated])


@router.get("/external_references")
async def list_external_references(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    window = query.window()
    filters = {name: query.text(name) for name in ("subject_type", "service_name", "service_model")}
    subject_ids, refs = query.ids("subject_id"), query.ids("service_model_refs")
    predicates = [p for p in (only_filter(query),) if p is not None]
    for name, wanted in filters.items():
        if wanted is not None:
            predicates.append(_equals(name, wanted))
    if subject_ids is not None:
        predicates.append(lambda doc: str(doc["subject_id"]) in set(subject_ids))
    if refs is not None:
        predicates.append(lambda doc: doc["service_model_ref"] in set(refs))
    ids = select(
        state, "external_references", [doc["id"] for doc in state.col("external_references")], predicates
    )
    return respond(
        state,
        "external_references",
        page(state, "external_references", ids, window),
        total=len(ids),
        window=window,
    )


@router.get("/expense_categories")
async def list_expense_categories(request: Request) -> JSONResponse:
    state, query = kantata(request), Query(request.query_params)
    window = query.window()
    predicates = [p for p in (only_filter(query),) if p is not None]
    ids = select(
        state, "expense_categories", [doc["id"] for doc in state.col("expense_categories")], predicates
    )
    return respond(
        state,
        "expense_categories",
        page(state, "expense_categories", ids, window),
        total=len(ids),
        window=window,
    )


def _equals(field: str, wanted: str) -> Predicate:
    return lambda doc: bool(doc[field] == wanted)
