"""NetSuite's error body onto the connector taxonomy.

REST web services answer errors with the HTTP status and a body of `type`, `title`, `status` and
`o:errorDetails`: a list of {detail, o:errorCode, o:errorPath (a JSON path into the request body),
o:errorUrlPath, o:errorHeader, o:errorQueryParam} (docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/
section_156570709583.html, "Error Handling in REST Web Services").

The account concurrency limit refuses a call with 429 and CONCURRENCY_LIMIT_EXCEEDED; NetSuite sends no
Retry-After with it that we could confirm, and a slot frees as soon as any call in flight ends, so a short
retry delay is suggested. Other request limits (REQUEST_LIMIT_EXCEEDED) keep their Retry-After when sent.
"""

from __future__ import annotations

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
from connectors.http import retry_after_seconds
from connectors.netsuite.wire import loads

SYSTEM = "netsuite"
CONCURRENCY_LIMIT_EXCEEDED = "CONCURRENCY_LIMIT_EXCEEDED"
# What we suggest waiting after a concurrency refusal: calls in flight end within a second or so.
CONCURRENCY_RETRY_SECONDS = 1.0


class NetSuiteRateLimited(RateLimited):
    """A 429 from NetSuite; `code` says which limit: CONCURRENCY_LIMIT_EXCEEDED or a request limit."""

    def __init__(self, message: str, *, retry_after: float | None, code: str | None) -> None:
        super().__init__(message, system=SYSTEM, retry_after=retry_after)
        self.code = code


def error_details(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = loads(response.content)
    except ValueError:
        return []
    details = body.get("o:errorDetails") if isinstance(body, dict) else None
    return [detail for detail in details or [] if isinstance(detail, dict)]


def field_errors(details: list[dict[str, Any]]) -> list[FieldError]:
    return [
        FieldError(
            field=detail.get("o:errorPath")
            or detail.get("o:errorQueryParam")
            or detail.get("o:errorHeader")
            or detail.get("o:errorUrlPath"),
            message=str(detail.get("detail") or ""),
            code=detail.get("o:errorCode"),
        )
        for detail in details
    ]


def error_for(response: httpx.Response, what: str) -> ConnectorError:
    status = response.status_code
    details = error_details(response)
    codes = [str(d.get("o:errorCode")) for d in details if d.get("o:errorCode")]
    summary = (
        "; ".join(f"{d.get('o:errorCode', 'ERROR')}: {d.get('detail', '')}".strip() for d in details)
        or response.text[:300]
    )
    message = f"NetSuite answered {status} on {what}: {summary}"
    if status == 429:
        code = codes[0] if codes else None
        retry_after = retry_after_seconds(response)
        if retry_after is None and code == CONCURRENCY_LIMIT_EXCEEDED:
            retry_after = CONCURRENCY_RETRY_SECONDS
        return NetSuiteRateLimited(message, retry_after=retry_after, code=code)
    if status in (401, 403):
        return AuthFailed(message, system=SYSTEM, status_code=status)
    if status == 404:
        return NotFound(message, system=SYSTEM, status_code=status)
    if status in (409, 412):
        return Conflict(message, system=SYSTEM, status_code=status)
    if status >= 500:
        return Unavailable(message, system=SYSTEM, status_code=status)
    return Rejected(message, system=SYSTEM, field_errors=field_errors(details), status_code=status)
