"""Xero's replies, byte for byte where the docs show them: success envelopes and every error shape.

Sources: developer.xero.com/documentation/api/http-response-codes (400 ApiException, 404 text,
503 text), the OAuth2 troubleshooting answers quoted in XeroAPI SDK issues (401/403 problem bodies),
developer.xero.com/documentation/guides/oauth2/limits (429 headers).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import Response

from sandboxes.exact_json import dumps
from sandboxes.xero.dates import milliseconds, net_json

JSON = "application/json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(content=dumps(payload), status_code=status, media_type=JSON, headers=headers)


def envelope(
    provider_name: str, collection: str, items: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": provider_name,
        "DateTimeUTC": net_json(milliseconds(datetime.now(UTC))),
        **extra,
        collection: items,
    }


def validation_exception(elements: list[dict[str, Any]]) -> Response:
    return json_response(
        400,
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": elements,
        },
    )


def post_data_invalid(message: str) -> Response:
    return json_response(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException", "Message": message})


def query_parse_error(message: str) -> Response:
    return json_response(400, {"ErrorNumber": 16, "Type": "QueryParseException", "Message": message})


def not_found() -> Response:
    return Response(
        content=b"The resource you're looking for cannot be found", status_code=404, media_type=TEXT
    )


def _problem(status: int, title: str, detail: str) -> dict[str, Any]:
    return {
        "Type": None,
        "Title": title,
        "Status": status,
        "Detail": detail,
        "Instance": str(uuid.uuid4()),
        "Extensions": {},
    }


def unauthorized(detail: str) -> Response:
    return json_response(
        401,
        _problem(401, "Unauthorized", detail),
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden() -> Response:
    return json_response(403, _problem(403, "Forbidden", "AuthenticationUnsuccessful"))


def idempotency_conflict(detail: str, status: int) -> Response:
    return json_response(
        status, _problem(status, "Conflict" if status == 409 else "Unprocessable Entity", detail)
    )


def rate_limited_parts(problem: str, retry_after: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    headers = [
        (b"content-type", TEXT.encode()),
        (b"retry-after", str(retry_after).encode()),
        (b"x-rate-limit-problem", problem.encode()),
    ]
    return 429, headers, b"Rate limit exceeded"


def unavailable_parts() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 503, [(b"content-type", TEXT.encode())], b"The Xero API is temporarily unavailable"


def token_error(error: str, status: int = 400) -> Response:
    return json_response(status, {"error": error})
