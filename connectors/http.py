"""The shared HTTP layer: one httpx.AsyncClient per connector, OAuth2 tokens, transport errors.

Nothing here retries a failed call. The one exception is the token itself: a 401 on a token we
believed valid is answered by fetching a fresh token and sending the request once more, because
that is how every OAuth2 API expects clients to handle expiry.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.errors import (
    AuthFailed,
    Conflict,
    ConnectorError,
    NotFound,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
)

DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
# Drop an idle pooled connection before the server does: uvicorn (our sandboxes, the ingress) and many
# vendor front ends close idle keep-alive connections after 5 s, and a request sent on a connection the
# server is closing at that moment fails with ReadError although the server never saw it.
IDLE_CONNECTION_SECONDS = 2.0


@dataclass
class Token:
    access_token: str
    expires_at: float


class OAuth2ClientCredentials(httpx.Auth):
    """Client-credentials grant with token caching and refresh-once on 401.

    `extra_token_params` carries vendor additions (Salesforce needs nothing more; Xero takes a scope).
    `is_expired_response` lets a vendor recognise its own expired-token answer.
    """

    requires_response_body = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        system: str,
        scope: str | None = None,
        extra_token_params: dict[str, str] | None = None,
        use_basic_auth: bool = False,
        is_expired_response: Callable[[httpx.Response], bool] | None = None,
    ) -> None:
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._system = system
        self._scope = scope
        self._extra = extra_token_params or {}
        self._use_basic_auth = use_basic_auth
        self._is_expired = is_expired_response or (lambda response: response.status_code == 401)
        self._token: Token | None = None
        self._lock = asyncio.Lock()
        self.token_fetches = 0

    def _token_request(self) -> httpx.Request:
        data = {"grant_type": "client_credentials", **self._extra}
        if self._scope:
            data["scope"] = self._scope
        headers = {"Accept": "application/json"}
        if self._use_basic_auth:
            basic = httpx.BasicAuth(self._client_id, self._client_secret)
            request = httpx.Request("POST", self._token_url, data=data, headers=headers)
            return next(basic.auth_flow(request))
        data.update(client_id=self._client_id, client_secret=self._client_secret)
        return httpx.Request("POST", self._token_url, data=data, headers=headers)

    def _accept_token(self, response: httpx.Response) -> Token:
        if response.status_code >= 500:
            raise Unavailable(
                f"token endpoint answered {response.status_code}",
                system=self._system,
                status_code=response.status_code,
            )
        if response.status_code == 429:
            raise RateLimited("token endpoint rate limited", system=self._system)
        if response.status_code != 200:
            raise AuthFailed(
                f"token request refused ({response.status_code}): {response.text[:200]}",
                system=self._system,
                status_code=response.status_code,
            )
        body = response.json()
        lifetime = float(body.get("expires_in", 1800))
        # Refresh a little early so a token never expires in flight.
        self.token_fetches += 1
        return Token(access_token=body["access_token"], expires_at=time.monotonic() + lifetime - 30)

    def _valid(self) -> bool:
        return self._token is not None and self._token.expires_at > time.monotonic()

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._valid():
            async with self._lock:
                if not self._valid():
                    token_response = yield self._token_request()
                    # This flow overrides httpx's own, so it must read bodies itself.
                    await token_response.aread()
                    self._token = self._accept_token(token_response)
        assert self._token is not None
        sent_with = self._token.access_token
        request.headers["Authorization"] = f"Bearer {sent_with}"
        response = yield request
        await response.aread()
        if self._is_expired(response):
            async with self._lock:
                if self._token is None or self._token.access_token == sent_with:
                    token_response = yield self._token_request()
                    await token_response.aread()
                    self._token = self._accept_token(token_response)
            request.headers["Authorization"] = f"Bearer {self._token.access_token}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("connectors are async only")

    def forget_token(self) -> None:
        self._token = None


def build_client(
    *,
    base_url: str,
    auth: httpx.Auth | None = None,
    headers: dict[str, str] | None = None,
    timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
    max_connections: int = 20,
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        headers={"Accept": "application/json", "User-Agent": "ps-sync/0.1", **(headers or {})},
        timeout=timeout,
        limits=pooled(max_connections),
    )


def pooled(max_connections: int = 20) -> httpx.Limits:
    return httpx.Limits(
        max_connections=max_connections,
        max_keepalive_connections=max_connections,
        keepalive_expiry=IDLE_CONNECTION_SECONDS,
    )


async def send(client: httpx.AsyncClient, request: httpx.Request, *, system: str) -> httpx.Response:
    """Send once; turn transport failures into the taxonomy. Status codes are the caller's to map."""
    try:
        return await client.send(request)
    except httpx.TimeoutException as exc:
        raise Timeout(f"{system} did not answer in time: {type(exc).__name__}", system=system) from exc
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
        raise Unavailable(f"{system} connection failed: {type(exc).__name__}: {exc}", system=system) from exc


def retry_after_seconds(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def generic_status_error(response: httpx.Response, *, system: str, message: str) -> ConnectorError:
    """The taxonomy class for a status code, for vendors whose body adds nothing more specific."""
    status = response.status_code
    if status == 429:
        return RateLimited(message, system=system, retry_after=retry_after_seconds(response))
    if status in (401, 403):
        return AuthFailed(message, system=system, status_code=status)
    if status == 404:
        return NotFound(message, system=system, status_code=status)
    if status in (300, 409, 412):
        return Conflict(message, system=system, status_code=status)
    if status >= 500:
        return Unavailable(message, system=system, status_code=status)
    return Rejected(message, system=system, status_code=status)
