"""HTTP access to the Xero Accounting API: auth, tenant header, concurrency bound, errors, paging.

- Auth: OAuth 2.0 client credentials (Xero "custom connections") against `{identity_url}/connect/token`
  with HTTP Basic client authentication; tokens live 30 minutes and are refreshed once on a 401.
- Every accounting call carries `xero-tenant-id`.
- Xero allows 5 calls in progress per tenant; an asyncio.Semaphore keeps this client under that bound
  itself (per process: workers sharing a tenant split it between them with `max_concurrency`).
- Every write carries an `Idempotency-Key` (at most 128 characters; longer business keys are hashed).
- Xero allows 60 calls a minute per tenant: a call budget (`pacing`) holds back what Xero would refuse. A
  short hold is waited out inside the call; a longer one fails it with `XeroRateLimited` and the wait,
  unless the activity asked its calls to be patient (`patient_calls`), when it is waited out up to that.
- Errors map onto the connector taxonomy; nothing is retried here (Temporal owns retries). A 429 becomes
  `XeroRateLimited` with Retry-After and the limit Xero names in X-Rate-Limit-Problem.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors.call_budget import CallBudget, CallBudgets, in_background, patience
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
from connectors.http import (
    DEFAULT_TIMEOUT,
    OAuth2ClientCredentials,
    build_client,
    generic_status_error,
    retry_after_seconds,
    send,
)
from connectors.paging import Page
from connectors.xero.mapping import element_errors, field_errors
from connectors.xero.pacing import XERO_MINUTE_LIMIT, MinutePacer
from connectors.xero.wire import dumps, loads
from domain.call_window import default_reserve

SYSTEM = "xero"
API_PATH = "/api.xro/2.0"
DEFAULT_SCOPES = ("accounting.transactions", "accounting.contacts", "accounting.settings.read")
MAX_IDEMPOTENCY_KEY = 128
PAGE_SIZE = 100
# A hold this short is waited out inside the call: failing the attempt would cost the activity a retry and
# repeat the reads that came before. Well below any activity's heartbeat timeout (60 s).
MAX_WAIT_IN_ATTEMPT_SECONDS = 5.0


class XeroRateLimited(RateLimited):
    """A 429 from Xero; `problem` is the limit that was hit: minute, day, concurrent or appminute."""

    def __init__(self, message: str, *, retry_after: float | None, problem: str | None) -> None:
        super().__init__(message, system=SYSTEM, retry_after=retry_after)
        self.problem = problem


@dataclass(frozen=True)
class ElementResult:
    """One element of a batch saved with summarizeErrors=false: what Xero stored, or why it refused it."""

    element: dict[str, Any]
    errors: tuple[FieldError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass(frozen=True)
class RemainingLimits:
    """Xero's remaining-call headers from the latest response, for metrics and pacing."""

    minute: int | None
    day: int | None
    app_minute: int | None
    observed_at: datetime


def bounded_key(key: str) -> str:
    """Xero takes keys of at most 128 characters; a longer business key is replaced by its digest."""
    if not key:
        raise ValueError("an idempotency key must not be empty")
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def http_date(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("If-Modified-Since needs an aware datetime (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int_header(response: httpx.Response, name: str) -> int | None:
    value = response.headers.get(name)
    return int(value) if value is not None and value.strip().isdigit() else None


def _expired(response: httpx.Response) -> bool:
    return response.status_code == 401


def _why_held(background: bool, reserve: int) -> str:
    if background:
        return (
            f"this tenant's calls for the minute are down to the {reserve} kept for posting and new deals, "
            "or Xero asked every caller to wait"
        )
    return "Xero's minute budget for this tenant is spent, or Xero asked every caller to wait"


class XeroClient:
    """The accounting API of one Xero organisation (tenant).

    `base_url` is Xero's API host (https://api.xero.com) and `identity_url` its identity host
    (https://identity.xero.com); the sandbox serves both. An `http` client may be passed in (tests pass
    one whose transport validates traffic against the spec); this client installs its OAuth2 auth on it.
    """

    def __init__(
        self,
        *,
        base_url: str,
        identity_url: str,
        client_id: str,
        client_secret: str,
        tenant_id: str,
        max_concurrency: int = 5,
        calls_per_minute: int = 60,
        background_reserve: int | None = None,
        max_wait_in_attempt: float = MAX_WAIT_IN_ATTEMPT_SECONDS,
        scopes: tuple[str, ...] = DEFAULT_SCOPES,
        http: httpx.AsyncClient | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_wait_in_attempt < 0:
            raise ValueError("max_wait_in_attempt must not be negative")
        if not tenant_id:
            raise ValueError("tenant_id is required: every Xero accounting call names its organisation")
        self.tenant_id = tenant_id
        self._root = base_url.rstrip("/")
        self._api = self._root + API_PATH
        self.auth = OAuth2ClientCredentials(
            token_url=identity_url.rstrip("/") + "/connect/token",
            client_id=client_id,
            client_secret=client_secret,
            system=SYSTEM,
            scope=" ".join(scopes),
            use_basic_auth=True,
            is_expired_response=_expired,
        )
        self._http = (
            http
            if http is not None
            else build_client(base_url=self._root, timeout=timeout, max_connections=max_concurrency * 2)
        )
        self._http.auth = self.auth
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.calls_per_minute = calls_per_minute
        self.background_reserve = (
            default_reserve(calls_per_minute) if background_reserve is None else background_reserve
        )
        # This process's own count until the worker shares the deployment's (`share_call_budgets`).
        self.pacer: CallBudget = MinutePacer(calls_per_minute, background_reserve=self.background_reserve)
        self.max_wait_in_attempt = max_wait_in_attempt
        self.waited_seconds = 0.0
        self.max_concurrency = max_concurrency
        self.limits: RemainingLimits | None = None
        self.in_flight = 0
        self.max_in_flight = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    def share_call_budgets(self, budgets: CallBudgets) -> None:
        """Count this tenant's calls in the budget every worker of the deployment shares."""
        self.pacer = budgets.budget(
            vendor=SYSTEM,
            tenant=self.tenant_id,
            per_minute=self.calls_per_minute,
            background_reserve=self.background_reserve,
        )

    # --- sending ------------------------------------------------------------------------------------------

    async def _send(self, request: httpx.Request) -> httpx.Response:
        background = in_background()
        may_wait = max(self.max_wait_in_attempt, patience())
        waited = 0.0
        while True:
            async with self._semaphore:
                # The budget may be the ledger's: its I/O stays off the event loop.
                wait = await asyncio.to_thread(self.pacer.wait_needed, background=background)
                if wait <= 0:
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    try:
                        response = await send(self._http, request, system=SYSTEM)
                    finally:
                        self.in_flight -= 1
                    break
            if waited + wait > may_wait:
                raise XeroRateLimited(
                    f"holding {'background ' if background else ''}{request.method} {request.url.path} back "
                    f"for {wait:.1f}s: {_why_held(background, self.background_reserve)}",
                    retry_after=wait,
                    problem="minute",
                )
            # Outside the semaphore: a waiting call must not keep others from calls they may make now.
            await asyncio.sleep(wait)
            waited += wait
            self.waited_seconds += wait
        await asyncio.to_thread(self._follow_server, response)
        return response

    def _follow_server(self, response: httpx.Response) -> None:
        minute = self._observe_limits(response)
        if response.status_code == 429:
            self.pacer.refused(retry_after_seconds(response))
            return
        limited = minute is not None and minute <= XERO_MINUTE_LIMIT
        self.pacer.server_reports_limit(limited)
        if limited and minute is not None:
            self.pacer.server_remaining(minute)

    def _observe_limits(self, response: httpx.Response) -> int | None:
        """Record the remaining-call headers; the minute's remaining calls, when Xero said."""
        minute = _int_header(response, "X-MinLimit-Remaining")
        day = _int_header(response, "X-DayLimit-Remaining")
        app = _int_header(response, "X-AppMinLimit-Remaining")
        if minute is not None or day is not None or app is not None:
            self.limits = RemainingLimits(
                minute=minute, day=day, app_minute=app, observed_at=datetime.now(UTC)
            )
        return minute

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        body: Any = None,
        idempotency_key: str | None = None,
        if_modified_since: datetime | None = None,
    ) -> Any:
        """One accounting API call; returns the parsed JSON (numbers as Decimal) or raises the taxonomy."""
        headers = {"xero-tenant-id": self.tenant_id}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = bounded_key(idempotency_key)
        if if_modified_since is not None:
            headers["If-Modified-Since"] = http_date(if_modified_since)
        content = None
        if body is not None:
            content = dumps(body)
            headers["Content-Type"] = "application/json"
        request = self._http.build_request(
            method, self._api + path, params=params, headers=headers, content=content
        )
        response = await self._send(request)
        if response.status_code >= 300:
            raise self._error(response, f"{method} {path}")
        return loads(response.content)

    async def connections(self) -> list[dict[str, Any]]:
        """The tenants this app may call (identity endpoint `GET /connections`)."""
        response = await self._send(self._http.build_request("GET", self._root + "/connections"))
        if response.status_code != 200:
            raise self._error(response, "GET /connections")
        result: list[dict[str, Any]] = loads(response.content)
        return result

    def _error(self, response: httpx.Response, what: str) -> ConnectorError:
        status = response.status_code
        text = response.text[:500]
        if status == 429:
            problem = response.headers.get("X-Rate-Limit-Problem")
            return XeroRateLimited(
                f"Xero rate limit hit ({problem or 'unknown limit'}) on {what}",
                retry_after=retry_after_seconds(response),
                problem=problem,
            )
        body: Any = None
        if "json" in response.headers.get("content-type", ""):
            try:
                body = loads(response.content)
            except ValueError:
                body = None
        if status == 400 and isinstance(body, dict):
            errors = field_errors(body)
            summary = "; ".join(e.message for e in errors) or str(body.get("Message") or text)
            return Rejected(
                f"Xero refused {what}: {body.get('Type', 'error')}: {summary}",
                system=SYSTEM,
                field_errors=errors,
                status_code=400,
            )
        if status == 401:
            return AuthFailed(
                f"Xero refused the access token on {what} even after a refresh: {text}",
                system=SYSTEM,
                status_code=401,
            )
        if status == 403:
            return AuthFailed(
                f"Xero forbade {what} for tenant {self.tenant_id} (not connected, or missing scope): {text}",
                system=SYSTEM,
                status_code=403,
            )
        if status == 404:
            return NotFound(f"Xero has no resource for {what}", system=SYSTEM, status_code=404)
        if status == 409:
            # The first request with this Idempotency-Key is still running: trying again later is safe.
            return Unavailable(
                f"Xero is still processing an earlier request with this key ({what})",
                system=SYSTEM,
                status_code=409,
            )
        if status == 422:
            return Conflict(
                f"Xero refused {what}: the Idempotency-Key was used for a different request: {text}",
                system=SYSTEM,
                status_code=422,
            )
        return generic_status_error(
            response, system=SYSTEM, message=f"Xero answered {status} on {what}: {text}"
        )

    # --- paging -------------------------------------------------------------------------------------------

    async def pages(
        self,
        path: str,
        collection: str,
        *,
        params: Mapping[str, str | int] | None = None,
        if_modified_since: datetime | None = None,
        cursor: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[Page[dict[str, Any]]]:
        """Pages of a Xero collection; a page's cursor is its page number, so a retry resumes there."""
        page = int(cursor) if cursor else 1
        if page < 1:
            raise ValueError(f"a Xero page cursor is a page number from 1, got {cursor!r}")
        while True:
            body = await self.request(
                "GET",
                path,
                params={**(params or {}), "page": page, "pageSize": page_size},
                if_modified_since=if_modified_since,
            )
            items: list[dict[str, Any]] = body.get(collection, [])
            pagination = body.get("pagination") or {}
            page_count = pagination.get("pageCount")
            more = page < page_count if isinstance(page_count, int) else len(items) >= page_size
            yield Page(
                items=items,
                cursor=str(page),
                next_cursor=str(page + 1) if more else None,
                extra={"pagination": pagination} if pagination else {},
            )
            if not more:
                return
            page += 1

    async def put(
        self, path: str, body: Any, *, idempotency_key: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        return await self.request("PUT", path, params=params, body=body, idempotency_key=idempotency_key)

    async def post(
        self, path: str, body: Any, *, idempotency_key: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        return await self.request("POST", path, params=params, body=body, idempotency_key=idempotency_key)

    async def get(
        self,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        if_modified_since: datetime | None = None,
    ) -> Any:
        return await self.request("GET", path, params=params, if_modified_since=if_modified_since)

    async def save_each(
        self,
        method: str,
        path: str,
        collection: str,
        elements: list[dict[str, Any]],
        *,
        idempotency_key: str,
        params: Mapping[str, str | int] | None = None,
    ) -> list[ElementResult]:
        """Save a batch with summarizeErrors=false: Xero keeps the good elements and marks the bad ones,
        answering 200 either way, so each element is checked here for its own validation errors."""
        body = await self.request(
            method,
            path,
            params={**(params or {}), "summarizeErrors": "false"},
            body={collection: elements},
            idempotency_key=idempotency_key,
        )
        return [ElementResult(element=e, errors=tuple(element_errors(e))) for e in body.get(collection, [])]
