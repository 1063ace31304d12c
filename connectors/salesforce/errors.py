"""Salesforce error bodies ([{message, errorCode, fields}]) mapped to the connector error taxonomy."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

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

SYSTEM = "salesforce"
# Row-lock contention clears by itself, so it is worth another attempt.
_TRANSIENT_CODES = {"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE"}
_CONFLICT_CODES = {"DUPLICATE_VALUE", "DUPLICATES_DETECTED", "DUPLICATE_EXTERNAL_ID"}
_NO_SUCH_COLUMN = re.compile(r"No such column '([^']+)'")


def _errors(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return [item for item in body if isinstance(item, dict)]
    if isinstance(body, dict) and "errorCode" in body:
        return [body]
    return []


def field_errors(body: Any) -> list[FieldError]:
    out: list[FieldError] = []
    for error in _errors(body):
        code = str(error.get("errorCode") or error.get("statusCode") or "")
        message = str(error.get("message", ""))
        fields = [str(name) for name in error.get("fields") or []]
        if not fields:
            column = _NO_SUCH_COLUMN.search(message)
            fields = [column.group(1)] if column else []
        if fields:
            out.extend(FieldError(field=name, message=message, code=code) for name in fields)
        else:
            out.append(FieldError(field=None, message=message, code=code))
    return out


def error_codes(body: Any) -> list[str]:
    return [str(error.get("errorCode") or error.get("statusCode") or "") for error in _errors(body)]


def map_error(status: int, body: Any, headers: Mapping[str, str], *, context: str) -> ConnectorError:
    """The taxonomy error for one Salesforce reply (a top-level response or a composite subresponse)."""
    codes = error_codes(body)
    details = "; ".join(f"{error.code}: {error.message}" for error in field_errors(body)) or str(body)[:300]
    message = f"{context}: HTTP {status} {details}"
    if status == 300:
        matches = ", ".join(str(url) for url in body) if isinstance(body, list) else str(body)
        return Conflict(
            f"{context}: the external id matches several records: {matches}",
            system=SYSTEM,
            status_code=status,
        )
    if "REQUEST_LIMIT_EXCEEDED" in codes:
        retry_after = headers.get("retry-after") or headers.get("Retry-After")
        try:
            seconds = max(0.0, float(retry_after)) if retry_after is not None else None
        except ValueError:
            seconds = None
        return RateLimited(message, system=SYSTEM, retry_after=seconds, status_code=status)
    if status in (401, 403):
        return AuthFailed(message, system=SYSTEM, status_code=status)
    if status == 404:
        return NotFound(message, system=SYSTEM, status_code=status)
    if status >= 500 or any(code in _TRANSIENT_CODES for code in codes):
        return Unavailable(message, system=SYSTEM, status_code=status)
    if status in (409, 412) or any(code in _CONFLICT_CODES for code in codes):
        return Conflict(message, system=SYSTEM, status_code=status)
    return Rejected(message, system=SYSTEM, field_errors=field_errors(body), status_code=status)
