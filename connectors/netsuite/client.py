"""HTTP access to SuiteTalk REST web services: the record API and SuiteQL, one NetSuite account.

- Every call carries the account's auth (TBA signature or OAuth 2.0 bearer token, see tba.py / oauth2.py).
- A NetSuite account limits the calls in flight (concurrency governance, shared by every integration of the
  account); a semaphore keeps this client under its own share (`max_concurrency`), so normally the account
  limit is never what refuses a call, and when it is (other integrations), the 429 becomes RateLimited.
- Records are addressed by internal id or by external id (`eid:<externalId>`). A create answers 204 with the
  new record's URL in Location; the id is read from there.
- SuiteQL runs as POST /services/rest/query/v1/suiteql with `Prefer: transient`, paged with limit and offset;
  `hasMore` says whether another page follows. A page's cursor is its offset, so a retry resumes there.
- Nothing is retried here: Temporal owns retries.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from connectors.errors import NotFound, Unavailable
from connectors.http import DEFAULT_TIMEOUT, build_client, send
from connectors.netsuite.errors import SYSTEM, error_for
from connectors.netsuite.wire import dumps, loads
from connectors.paging import Page

RECORD_PATH = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
# NetSuite's largest SuiteQL page.
SUITEQL_PAGE = 1000


def external(external_id: str) -> str:
    """A record reference by external id, escaped for the URL path."""
    if not external_id:
        raise ValueError("an external id must not be empty")
    return "eid:" + quote(external_id, safe="")


class NetSuiteClient:
    def __init__(
        self,
        *,
        base_url: str,
        auth: httpx.Auth,
        max_concurrency: int = 4,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.base_url = base_url.rstrip("/")
        self._http = (
            http
            if http is not None
            else build_client(base_url=self.base_url, timeout=timeout, max_connections=max_concurrency * 2)
        )
        self._http.auth = auth
        self.auth = auth
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.max_in_flight = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """One call; a status of 300 or more raises the taxonomy."""
        sent_headers = dict(headers or {})
        content = None
        if body is not None:
            content = dumps(body)
            sent_headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method, self.base_url + path, params=params, headers=sent_headers, content=content
        )
        async with self._semaphore:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            try:
                response = await send(self._http, request, system=SYSTEM)
            finally:
                self.in_flight -= 1
        if response.status_code >= 300:
            raise error_for(response, f"{method} {path}")
        return response

    # --- the record API -------------------------------------------------------------------------------------

    async def get_record(self, record_type: str, ref: str, *, expand: bool = False) -> dict[str, Any]:
        params = {"expandSubResources": "true"} if expand else None
        response = await self.send("GET", f"{RECORD_PATH}/{record_type}/{ref}", params=params)
        record: dict[str, Any] = loads(response.content)
        return record

    async def find_record(self, record_type: str, ref: str, *, expand: bool = False) -> dict[str, Any] | None:
        try:
            return await self.get_record(record_type, ref, expand=expand)
        except NotFound:
            return None

    async def upsert(self, record_type: str, external_id: str, body: Mapping[str, Any]) -> str:
        """PUT .../<type>/eid:<externalId>: creates the record, or updates the one carrying that external id.
        Returns the internal id."""
        response = await self.send("PUT", f"{RECORD_PATH}/{record_type}/{external(external_id)}", body=body)
        return self._created_id(response, record_type)

    async def create(self, record_type: str, body: Mapping[str, Any]) -> str:
        response = await self.send("POST", f"{RECORD_PATH}/{record_type}", body=body)
        return self._created_id(response, record_type)

    async def update(self, record_type: str, ref: str, body: Mapping[str, Any]) -> None:
        await self.send("PATCH", f"{RECORD_PATH}/{record_type}/{ref}", body=body)

    async def action(
        self, record_type: str, ref: str, action: str, body: Mapping[str, Any] | None = None
    ) -> Any:
        """A record action (the programmatic equivalent of a button), POST .../<type>/<id>/@<action>."""
        response = await self.send("POST", f"{RECORD_PATH}/{record_type}/{ref}/@{action}", body=body or {})
        return loads(response.content) if response.content else None

    def _created_id(self, response: httpx.Response, record_type: str) -> str:
        location = response.headers.get("Location", "")
        record_id = urlsplit(location).path.rstrip("/").rsplit("/", 1)[-1]
        if not location or not record_id or record_id.startswith("eid:"):
            raise Unavailable(
                f"NetSuite saved a {record_type} but answered without its URL (Location: {location!r})",
                system=SYSTEM,
                status_code=response.status_code,
            )
        return record_id

    # --- SuiteQL --------------------------------------------------------------------------------------------

    async def suiteql_pages(
        self, query: str, *, cursor: str | None = None, limit: int = SUITEQL_PAGE
    ) -> AsyncIterator[Page[dict[str, Any]]]:
        offset = int(cursor) if cursor else 0
        if offset < 0:
            raise ValueError(f"a SuiteQL cursor is an offset from 0, got {cursor!r}")
        while True:
            response = await self.send(
                "POST",
                SUITEQL_PATH,
                params={"limit": limit, "offset": offset},
                body={"q": query},
                headers={"Prefer": "transient"},
            )
            body = loads(response.content)
            items: list[dict[str, Any]] = [
                {key: value for key, value in row.items() if key != "links"} for row in body.get("items", [])
            ]
            more = bool(body.get("hasMore"))
            following = offset + int(body.get("count", len(items)))
            yield Page(
                items=items,
                cursor=str(offset),
                next_cursor=str(following) if more else None,
                extra={"totalResults": body.get("totalResults")},
            )
            if not more or not items:
                return
            offset = following

    async def suiteql(self, query: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        async for page in self.suiteql_pages(query):
            rows.extend(page.items)
        return rows
