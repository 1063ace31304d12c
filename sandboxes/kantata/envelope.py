"""Kantata's response envelope and `include=` side-loading.

Every response carries `count`, `meta` (count, page_count, page_number, page_size), the ordered `results`
of `{key, id}` references, and one id-keyed collection per record type, holding both the requested records
and the associations asked for with `include=`
(https://developer.kantata.com/kantata/specification/section/response-format).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi.responses import JSONResponse

from sandboxes.kantata.query import Window
from sandboxes.kantata.state import Doc, public

if TYPE_CHECKING:
    from sandboxes.kantata.state import KantataState

Resolver = Callable[["KantataState", Doc], list[str]]


@dataclass(frozen=True)
class Include:
    target: str  # response collection of the associated records, e.g. "users"
    attribute: str  # association attribute written on the parent, e.g. "user_id" or "participant_ids"
    many: bool
    resolve: Resolver


def one(target: str, attribute: str, source: str | None = None) -> Include:
    """A to-one association whose id sits on the record as `source` (default: the attribute itself)."""
    field = source or attribute

    def resolve(state: KantataState, doc: Doc) -> list[str]:
        value = doc.get(field)
        return [] if value in (None, "") else [str(value)]

    return Include(target, attribute, False, resolve)


def many(target: str, attribute: str, resolve: Resolver) -> Include:
    return Include(target, attribute, True, resolve)


def external_references() -> Include:
    from sandboxes.kantata.state import SUBJECT_TYPES

    def resolve(state: KantataState, doc: Doc) -> list[str]:
        subject = SUBJECT_TYPES[doc["_key"]]
        return [ref["id"] for ref in state.references_of(subject, doc["id"])]

    return Include("external_references", "external_reference_ids", True, resolve)


def respond(
    state: KantataState,
    key: str,
    docs: list[Doc],
    *,
    total: int | None = None,
    window: Window | None = None,
    includes: dict[str, Include] | None = None,
    names: list[str] | None = None,
    shape: Callable[[Doc], Doc] = public,
    status: int = 200,
) -> JSONResponse:
    body = envelope(state, key, docs, total=total, window=window, includes=includes, names=names, shape=shape)
    return JSONResponse(body, status_code=status)


def envelope(
    state: KantataState,
    key: str,
    docs: list[Doc],
    *,
    total: int | None = None,
    window: Window | None = None,
    includes: dict[str, Include] | None = None,
    names: list[str] | None = None,
    shape: Callable[[Doc], Doc] = public,
) -> dict[str, Any]:
    count = len(docs) if total is None else total
    size = window.size if window is not None else max(len(docs), 1)
    body: dict[str, Any] = {
        "count": count,
        "meta": {
            "count": count,
            "page_count": math.ceil(count / size) if count else 0,
            "page_number": window.page_number if window is not None else 1,
            "page_size": size,
        },
        "results": [{"key": key, "id": doc["id"]} for doc in docs],
        key: {},
    }
    for doc in docs:
        shaped = shape(doc)
        for name in names or []:
            assert includes is not None
            association = includes[name]
            ids = association.resolve(state, {**doc, "_key": key})
            shaped[association.attribute] = ids if association.many else (ids[0] if ids else None)
            bucket = body.setdefault(association.target, {})
            for related_id in ids:
                if related_id not in bucket:
                    related = state.get(association.target, related_id)
                    if related is not None:
                        bucket[related_id] = public(related)
        # A record already side-loaded under its own key (a story's parent story) keeps the fuller copy.
        body[key][doc["id"]] = shaped
    return body
