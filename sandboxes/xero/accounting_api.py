"""What every Accounting API endpoint of the sandbox shares: tenant and token checks, Idempotency-Key replays,
request parameters, listings with Xero's filters and paging, and the reply envelope.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fastapi import Request, Response

from sandboxes.exact_json import loads
from sandboxes.xero import query, replies
from sandboxes.xero.books import DocumentNotFound, ValidationFailed, XeroBooks
from sandboxes.xero.idempotency import MAX_KEY_LENGTH, KeyInUse, Stored, fingerprint
from sandboxes.xero.identity import refusal
from sandboxes.xero.render import wire
from sandboxes.xero.sandbox import XeroSandbox

API = "/api.xro/2.0"
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


class PostDataInvalid(Exception):
    pass


def flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() == "true"


def int_param(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def modified_since(request: Request) -> int | None:
    """If-Modified-Since as epoch ms; Xero takes ISO 8601 (UTC unless an offset is given) or RFC 1123."""
    value = request.headers.get("If-Modified-Since")
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def summarize(request: Request) -> bool:
    # The spec lists the parameter's default as false, but Xero summarises errors (one 400 for the
    # batch) unless the caller asks otherwise; the docs' example is summarizeErrors=false.
    return flag(request, "summarizeErrors", True)


async def body(request: Request) -> Any:
    raw = await request.body()
    try:
        return loads(raw) if raw else None
    except ValueError as exc:
        raise PostDataInvalid(f"JSON for post data was invalid, {exc}") from exc


def batch_of(document: Any, collection: str) -> Any:
    """The elements a write sends: under the collection's name, or one bare element, or a bare list."""
    if isinstance(document, dict) and collection in document:
        return document[collection]
    return [document] if isinstance(document, dict) else document


class AccountingApi:
    def __init__(self, sandbox: XeroSandbox) -> None:
        self._sandbox = sandbox

    def books(self, request: Request, operation: str) -> XeroBooks | Response:
        self._sandbox.calls[operation] += 1
        if (refused := refusal(self._sandbox, request)) is not None:
            return refused
        books = self._sandbox.books.get(request.headers.get("xero-tenant-id", ""))
        return books if books is not None else replies.forbidden()

    def ok(self, collection: str, items: list[dict[str, Any]], **extra: Any) -> Response:
        return replies.json_response(
            200, replies.envelope(self._sandbox.config.provider_name, collection, wire(items), **extra)
        )

    async def write(self, request: Request, books: XeroBooks, work: Callable[[Any], Response]) -> Response:
        """Run a write once per Idempotency-Key; replays get the stored reply without touching the books."""
        raw = await request.body()
        key = request.headers.get("Idempotency-Key")
        if key is not None and len(key) > MAX_KEY_LENGTH:
            return replies.validation_exception(
                [
                    {
                        "ValidationErrors": [
                            {"Message": f"Idempotency-Key must be at most {MAX_KEY_LENGTH} characters."}
                        ]
                    }
                ]
            )
        print_ = fingerprint(request.method, request.url.path, request.url.query, raw)
        if key is not None:
            try:
                stored = self._sandbox.keys.begin(books.tenant_id, key, print_)
            except KeyInUse as exc:
                return replies.idempotency_conflict(exc.detail, exc.status)
            if stored is not None:
                return Response(content=stored.body, status_code=stored.status, media_type=stored.media_type)
        response: Response | None = None
        try:
            try:
                document = await body(request)
                response = work(document)
            except PostDataInvalid as exc:
                response = replies.post_data_invalid(str(exc))
            except ValidationFailed as exc:
                response = replies.validation_exception(wire(exc.elements))
            except DocumentNotFound:
                response = replies.not_found()
            return response
        finally:
            if key is not None:
                self._sandbox.keys.finish(
                    books.tenant_id,
                    key,
                    print_,
                    None
                    if response is None
                    else Stored(
                        response.status_code, bytes(response.body), response.media_type or replies.JSON
                    ),
                )

    def listing(
        self,
        request: Request,
        docs: list[dict[str, Any]],
        collection: str,
        *,
        modified_field: str = "UpdatedDateUTC",
        paged: bool = True,
        strip_when_unpaged: tuple[str, ...] = (),
    ) -> Response:
        try:
            predicate = query.where(request.query_params.get("where"))
            since = modified_since(request)
            selected = [
                d for d in docs if predicate(d) and (since is None or d.get(modified_field, 0) >= since)
            ]
            selected = query.order(selected, request.query_params.get("order"))
        except query.QueryError as exc:
            return replies.query_parse_error(str(exc))
        page = int_param(request, "page") if paged else None
        if page is None:
            # Without `page` Xero returns every match but leaves the heavy parts (line items) out.
            return self.ok(
                collection, [{k: v for k, v in d.items() if k not in strip_when_unpaged} for d in selected]
            )
        size = min(max(int_param(request, "pageSize") or DEFAULT_PAGE_SIZE, 1), MAX_PAGE_SIZE)
        page = max(page, 1)
        chunk = selected[(page - 1) * size : page * size]
        pagination = {
            "page": page,
            "pageSize": size,
            "pageCount": -(-len(selected) // size),
            "itemCount": len(selected),
        }
        return self.ok(collection, chunk, pagination=pagination)
