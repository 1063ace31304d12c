"""HTTP to Kantata OX: OAuth2 bearer tokens, the `count`/`meta`/`results` envelope, pages, error mapping.

Kantata answers every call with ordered `results` references into id-keyed collections, which also hold
whatever `include=` side-loaded (https://developer.kantata.com/kantata/specification/section/response-format).
Lists page with `page`/`per_page` (at most 200). Errors come as `{"errors": [{type, message, field?}]}`, and
a 429 carries no Retry-After, so RateLimited has none either. Nothing here retries.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    FieldError,
    NotFound,
    RateLimited,
    Rejected,
    Unavailable,
)
from connectors.http import OAuth2ClientCredentials, build_client, retry_after_seconds, send

SYSTEM = "kantata"
API_PREFIX = "/api/v1"
MAX_PER_PAGE = 200

Record = dict[str, Any]
Params = Mapping[str, str | int]


@dataclass(frozen=True)
class Envelope:
    """One decoded Kantata response."""

    count: int
    page_number: int
    page_count: int
    page_size: int
    results: tuple[tuple[str, str], ...]
    collections: Mapping[str, Mapping[str, Record]]

    @classmethod
    def decode(cls, body: Any) -> Envelope:
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise Unavailable("Kantata answered without a results array", system=SYSTEM)
        meta = body.get("meta") or {}
        collections = {key: value for key, value in body.items() if isinstance(value, dict) and key != "meta"}
        return cls(
            count=int(body.get("count", len(body["results"]))),
            page_number=int(meta.get("page_number", 1)),
            page_count=int(meta.get("page_count", 1)),
            page_size=int(meta.get("page_size", len(body["results"]))),
            results=tuple((str(ref["key"]), str(ref["id"])) for ref in body["results"]),
            collections=collections,
        )

    def records(self) -> list[Record]:
        """The requested records in Kantata's order (a collection alone also holds side-loaded records)."""
        out = []
        for key, record_id in self.results:
            record = self.lookup(key, record_id)
            if record is None:
                raise Unavailable(f"Kantata listed {key} {record_id} but did not send it", system=SYSTEM)
            out.append(record)
        return out

    def one(self) -> Record:
        records = self.records()
        if len(records) != 1:
            raise Unavailable(f"expected one record from Kantata, got {len(records)}", system=SYSTEM)
        return records[0]

    def lookup(self, key: str, record_id: Any) -> Record | None:
        if record_id is None:
            return None
        return self.collections.get(key, {}).get(str(record_id))

    def related(self, record: Record, attribute: str, key: str) -> list[Record]:
        """Side-loaded records an include attached (`user_id` or `external_reference_ids` style)."""
        value = record.get(attribute)
        ids = value if isinstance(value, list) else ([] if value is None else [value])
        return [found for record_id in ids if (found := self.lookup(key, record_id)) is not None]

    @property
    def next_page(self) -> int | None:
        return self.page_number + 1 if self.page_number < self.page_count else None


def encode_json(value: Any) -> bytes:
    """JSON where a Decimal becomes a number written from its own digits, never through a float."""
    return _encode(value).encode()


def _encode(value: Any) -> str:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot send {value} to Kantata")
        return format(value, "f")
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, float):
        raise TypeError("floats are not sent to Kantata; use Decimal or int")
    return json.dumps(value)


def error_for(response: httpx.Response) -> ConnectorError:
    """Kantata's status and error body as the taxonomy."""
    status = response.status_code
    errors: list[dict[str, Any]] = []
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("errors"), list):
            errors = [error for error in body["errors"] if isinstance(error, dict)]
    except ValueError:
        pass
    detail = "; ".join(str(error.get("message", "")) for error in errors) or response.text[:200] or "no body"
    message = f"Kantata {response.request.method} {response.request.url.path} answered {status}: {detail}"
    if status == 429:
        return RateLimited(message, system=SYSTEM, retry_after=retry_after_seconds(response))
    if status in (401, 403):
        return AuthFailed(message, system=SYSTEM, status_code=status)
    if status == 404:
        return NotFound(message, system=SYSTEM, status_code=status)
    if status == 409:
        return Conflict(message, system=SYSTEM, status_code=status)
    if status >= 500:
        return Unavailable(message, system=SYSTEM, status_code=status)
    field_errors = [
        FieldError(field=error.get("field"), message=str(error.get("message", "")), code=error.get("type"))
        for error in errors
    ]
    return Rejected(message, system=SYSTEM, field_errors=field_errors, status_code=status)


class KantataClient:
    """A thin Kantata OX client: one call, one answer or one taxonomy error."""

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        client_secret: str,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        base = base_url.rstrip("/")
        self.auth = OAuth2ClientCredentials(
            token_url=f"{base}/oauth/token",
            client_id=client_id,
            client_secret=client_secret,
            system=SYSTEM,
        )
        if http is None:
            http = build_client(base_url=base, auth=self.auth)
        elif http.auth is None:
            # A caller-built client (own timeouts or transport) still authenticates as this service account.
            http.auth = self.auth
        self._http = http

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, method: str, path: str, *, params: Params | None = None, body: Any = None
    ) -> Envelope | None:
        headers = {"Content-Type": "application/json"} if body is not None else None
        request = self._http.build_request(
            method,
            f"{API_PREFIX}{path}",
            params={k: str(v) for k, v in (params or {}).items()},
            content=encode_json(body) if body is not None else None,
            headers=headers,
        )
        response = await send(self._http, request, system=SYSTEM)
        if response.status_code == 204:
            return None
        if response.status_code >= 300:
            raise error_for(response)
        try:
            decoded = response.json()
        except ValueError as exc:
            raise Unavailable(f"Kantata sent an unreadable body for {path}: {exc}", system=SYSTEM) from exc
        return Envelope.decode(decoded)

    async def get(self, path: str, params: Params | None = None) -> Envelope:
        envelope = await self.request("GET", path, params=params)
        assert envelope is not None
        return envelope

    async def post(self, path: str, body: Any, params: Params | None = None) -> Envelope:
        envelope = await self.request("POST", path, params=params, body=body)
        assert envelope is not None
        return envelope

    async def put(self, path: str, body: Any, params: Params | None = None) -> Envelope:
        envelope = await self.request("PUT", path, params=params, body=body)
        assert envelope is not None
        return envelope

    async def pages(
        self, path: str, params: Params, *, start: str | None = None, per_page: int = MAX_PER_PAGE
    ) -> AsyncIterator[tuple[Envelope, int]]:
        """Pages from `start` (a page number, the cursor a caller saved) to the last, with their numbers."""
        number = parse_page_cursor(start)
        while True:
            envelope = await self.get(path, {**params, "page": number, "per_page": per_page})
            yield envelope, number
            following = envelope.next_page
            if following is None:
                return
            number = following

    async def all_records(self, path: str, params: Params) -> tuple[list[Record], list[Envelope]]:
        records: list[Record] = []
        envelopes: list[Envelope] = []
        async for envelope, _ in self.pages(path, params):
            records.extend(envelope.records())
            envelopes.append(envelope)
        return records, envelopes


def parse_page_cursor(cursor: str | None) -> int:
    if cursor is None:
        return 1
    if not cursor.isdigit() or int(cursor) < 1:
        raise Rejected(
            f"not a Kantata page cursor: {cursor!r} (expected a page number)",
            system=SYSTEM,
            field_errors=[FieldError(field="cursor", message="must be a page number")],
        )
    return int(cursor)
