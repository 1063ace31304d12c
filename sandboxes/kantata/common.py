"""Pieces every Kantata route shares: bodies parsed without floats, bulk payloads, filtered paging."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import Request

from sandboxes.kantata.currency import base_unit
from sandboxes.kantata.errors import bad_request, validation
from sandboxes.kantata.query import Query, Window, parse_day
from sandboxes.kantata.state import Doc, KantataState

Predicate = Callable[[Doc], bool]

CURRENCY_SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "JPY": "¥", "CAD": "$", "AUD": "$"}


async def read_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        # Money arrives as JSON numbers; parsing them as Decimal keeps every cent the client sent.
        body = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise bad_request("Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise bad_request("Request body must be a JSON object")
    return body


def attribute_sets(body: dict[str, Any], singular: str, plural: str, bulk_limit: int) -> list[dict[str, Any]]:
    """The objects to create: `{singular: {...}}`, or `{plural: [...]}` for Kantata's bulk create."""
    if plural in body:
        items = body[plural]
        if not isinstance(items, list) or not items:
            raise bad_request(f"{plural} must be a non-empty array")
        if len(items) > bulk_limit:
            raise bad_request(
                f"Bulk create accepts up to {bulk_limit} {plural} per request, got {len(items)}"
            )
        if not all(isinstance(item, dict) for item in items):
            raise bad_request(f"every item of {plural} must be an object")
        return items
    item = body.get(singular)
    if not isinstance(item, dict):
        raise bad_request(f"Request body must contain a {singular} object or a {plural} array")
    return [item]


def single(body: dict[str, Any], singular: str) -> dict[str, Any]:
    item = body.get(singular)
    if not isinstance(item, dict):
        raise bad_request(f"Request body must contain a {singular} object")
    return item


class ListCache:
    """Filtered id lists per query, valid until the next write: a poller pages one query many times."""

    def __init__(self) -> None:
        self._entries: dict[tuple[Any, ...], tuple[int, list[str]]] = {}

    def get_or_build(
        self, state: KantataState, key: tuple[Any, ...], build: Callable[[], list[str]]
    ) -> list[str]:
        hit = self._entries.get(key)
        if hit is not None and hit[0] == state.version:
            return hit[1]
        ids = build()
        if len(self._entries) > 128:
            self._entries.clear()
        self._entries[key] = (state.version, ids)
        return ids


def cache_key(request: Request) -> tuple[Any, ...]:
    skip = {"page", "per_page", "limit", "offset", "include", "optional_fields", "optional_fields[]"}
    return (
        request.url.path,
        tuple(sorted((k, v) for k, v in request.query_params.multi_items() if k not in skip)),
    )


def page(state: KantataState, key: str, ids: list[str], window: Window) -> list[Doc]:
    chosen = ids[window.offset : window.offset + window.size]
    return [doc for record_id in chosen if (doc := state.get(key, record_id)) is not None]


def select(
    state: KantataState, key: str, candidates: Iterable[str], predicates: list[Predicate]
) -> list[str]:
    out: list[str] = []
    for record_id in candidates:
        doc = state.get(key, record_id)
        if doc is not None and all(predicate(doc) for predicate in predicates):
            out.append(record_id)
    return out


def sort_ids(state: KantataState, key: str, ids: list[str], field: str, descending: bool) -> list[str]:
    def sort_key(record_id: str) -> tuple[Any, int]:
        doc = state.get(key, record_id) or {}
        return (doc.get(field) or "", int(record_id))

    return sorted(ids, key=sort_key, reverse=descending)


def only_filter(query: Query) -> Predicate | None:
    wanted = query.ids("only")
    if wanted is None:
        return None
    allowed = set(wanted)
    return lambda doc: doc["id"] in allowed


def external_reference_filters(state: KantataState, subject_type: str, query: Query) -> list[Predicate]:
    """The `external_reference_*` filters Kantata offers on every record type that can carry references."""
    service_name = query.text("external_reference_service_name")
    model = query.text("external_reference_service_model")
    single_ref = query.text("external_reference_service_model_ref")
    refs = query.ids("external_reference_service_model_refs")
    if refs is not None and len(refs) > 200:
        raise bad_request("external_reference_service_model_refs accepts up to 200 ids")
    status = query.text("external_reference_status")
    external_status = query.text("external_reference_external_status")
    message = query.text("external_reference_external_message")
    has_refs = query.flag("has_external_references")
    without = query.text("without_external_reference_service_name")
    wanted_refs = set(refs or []) | ({single_ref} if single_ref else set())
    ref_conditions = any(
        v is not None for v in (service_name, model, status, external_status, message)
    ) or bool(wanted_refs)
    predicates: list[Predicate] = []
    if ref_conditions:

        def matches(doc: Doc) -> bool:
            for ref in state.references_of(subject_type, doc["id"]):
                if service_name is not None and ref["service_name"] != service_name:
                    continue
                if model is not None and ref["service_model"] != model:
                    continue
                if wanted_refs and ref["service_model_ref"] not in wanted_refs:
                    continue
                if status is not None and ref["status"] != status:
                    continue
                if external_status is not None and ref.get("external_status") != external_status:
                    continue
                if message is not None and ref.get("external_message") != message:
                    continue
                return True
            return False

        predicates.append(matches)
    if has_refs is not None:
        predicates.append(lambda doc: bool(state.references_of(subject_type, doc["id"])) == has_refs)
    if without is not None:
        predicates.append(
            lambda doc: all(
                ref["service_name"] != without for ref in state.references_of(subject_type, doc["id"])
            )
        )
    return predicates


def created_updated_filters(query: Query) -> list[Predicate]:
    predicates: list[Predicate] = []
    for name, field, after in (
        ("created_after", "created_at", True),
        ("created_before", "created_at", False),
        ("updated_after", "updated_at", True),
        ("updated_before", "updated_at", False),
    ):
        moment = query.timestamp(name)
        if moment is None:
            continue
        predicates.append(_time_bound(field, moment.timestamp(), after))
    return predicates


def _time_bound(field: str, stamp: float, after: bool) -> Predicate:
    def check(doc: Doc) -> bool:
        value = _ts(doc, field)
        return value > stamp if after else value < stamp

    return check


def _ts(doc: Doc, field: str) -> float:
    from sandboxes.kantata.clock import parse_iso

    return parse_iso(doc[field]).timestamp()


# --- attribute validation -------------------------------------------------------------------------------


def req_text(attrs: dict[str, Any], field: str, prefix: str = "") -> str:
    value = attrs.get(field)
    if not isinstance(value, str) or not value.strip():
        raise validation(prefix + field, f"{prefix}{field} is required")
    return value.strip()


def opt_text(attrs: dict[str, Any], field: str, prefix: str = "") -> str | None:
    value = attrs.get(field)
    if value is None:
        return None
    if not isinstance(value, str):
        raise validation(prefix + field, f"{prefix}{field} must be a string")
    return value


def opt_bool(attrs: dict[str, Any], field: str, default: bool | None, prefix: str = "") -> bool | None:
    value = attrs.get(field, default)
    if value is None or isinstance(value, bool):
        return value
    raise validation(prefix + field, f"{prefix}{field} must be true or false")


def req_int(attrs: dict[str, Any], field: str, prefix: str = "", minimum: int | None = None) -> int:
    value = attrs.get(field)
    if value is None:
        raise validation(prefix + field, f"{prefix}{field} is required")
    return as_int(value, prefix + field, minimum)


def as_int(value: Any, field: str, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
        raise validation(field, f"{field} must be an integer")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise validation(field, f"{field} must be an integer") from None
    if number != number.to_integral_value():
        raise validation(field, f"{field} must be a whole number, got {value}")
    if minimum is not None and number < minimum:
        raise validation(field, f"{field} must be at least {minimum}")
    return int(number)


def opt_day(attrs: dict[str, Any], field: str, prefix: str = "") -> str | None:
    value = attrs.get(field)
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise validation(prefix + field, f"{prefix}{field} must be a YYYY-MM-DD date")
    try:
        return parse_day(field, value).isoformat()
    except Exception:
        raise validation(
            prefix + field, f"{prefix}{field} must be a YYYY-MM-DD date, got {value!r}"
        ) from None


def req_day(attrs: dict[str, Any], field: str, prefix: str = "") -> str:
    value = opt_day(attrs, field, prefix)
    if value is None:
        raise validation(prefix + field, f"{prefix}{field} is required")
    return value


def in_range(day: str, bounds: tuple[date | None, date | None]) -> bool:
    start, end = bounds
    value = date.fromisoformat(day)
    return (start is None or value >= start) and (end is None or value <= end)


def currency_fields(currency: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "currency_base_unit": base_unit(currency),
        "currency_symbol": CURRENCY_SYMBOLS.get(currency, currency),
    }
