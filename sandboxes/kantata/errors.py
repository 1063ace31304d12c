"""Kantata's error envelope: a top-level `errors` array of {type, message[, field]} objects.

Documented types are `oauth` (authentication), `system` (account or platform) and `validation` (model
validation, with the offending `field`): https://developer.kantata.com/kantata/specification/section/errors
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse


class KantataApiError(Exception):
    def __init__(
        self, status: int, errors: list[dict[str, Any]], headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(errors[0]["message"] if errors else str(status))
        self.status = status
        self.errors = errors
        self.headers = headers or {}


def validation(field: str, message: str) -> KantataApiError:
    return KantataApiError(422, [{"type": "validation", "message": message, "field": field}])


def validations(problems: list[tuple[str, str]]) -> KantataApiError:
    return KantataApiError(
        422, [{"type": "validation", "message": message, "field": field} for field, message in problems]
    )


def bad_request(message: str) -> KantataApiError:
    return KantataApiError(400, [{"type": "system", "message": message}])


def not_found() -> KantataApiError:
    return KantataApiError(404, [{"type": "system", "message": "Page Not Found"}])


# Kantata's API sits behind Doorkeeper: a bad bearer token is answered with this body and challenge header.
OAUTH_HEADERS = {
    "WWW-Authenticate": 'Bearer realm="Doorkeeper", error="invalid_token", '
    'error_description="The access token is invalid"',
}


def unauthorized() -> KantataApiError:
    return KantataApiError(401, [{"type": "oauth", "message": "Invalid OAuth 2 Request"}], OAUTH_HEADERS)


def error_body(errors: list[dict[str, Any]]) -> bytes:
    return json.dumps({"errors": errors}).encode()


def rate_limited_body() -> bytes:
    # The docs say only "retry your request after a small delay": no Retry-After, no rate-limit headers.
    return error_body([{"type": "system", "message": "Too Many Requests. Please retry after a small delay."}])


def unavailable_body() -> bytes:
    return error_body([{"type": "system", "message": "Service is unavailable"}])


async def handle_api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, KantataApiError)
    return JSONResponse({"errors": exc.errors}, status_code=exc.status, headers=exc.headers)
