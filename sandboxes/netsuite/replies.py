"""NetSuite's answers: JSON bodies with exact numbers, 204 with a Location for writes, and its error body
(`type`, `title`, `status`, `o:errorDetails` of {detail, o:errorCode, o:errorPath...})."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from sandboxes.exact_json import dumps

JSON = "application/json; charset=UTF-8"
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class NetSuiteError(Exception):
    """Raised inside the sandbox; answered as NetSuite's error body."""

    def __init__(self, status: int, code: str, detail: str, **where: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        # o:errorPath, o:errorUrlPath, o:errorHeader or o:errorQueryParam, given as error_path=... etc.
        self.where = where


def error_body(status: int, details: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "https://www.rfc-editor.org/rfc/rfc9110.html#section-15",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "o:errorDetails": details,
    }


def error_parts(
    status: int, code: str, detail: str, **where: str
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    entry: dict[str, Any] = {"detail": detail, "o:errorCode": code}
    for key, value in where.items():
        entry["o:" + "".join(part.capitalize() if i else part for i, part in enumerate(key.split("_")))] = (
            value
        )
    body = dumps(error_body(status, [entry])).encode()
    return status, [(b"content-type", JSON.encode())], body


def error(err: NetSuiteError) -> Response:
    status, _, body = error_parts(err.status, err.code, err.detail, **err.where)
    return Response(content=body, status_code=status, media_type=JSON)


def json_response(status: int, body: Any) -> Response:
    return Response(content=dumps(body), status_code=status, media_type=JSON)


def created(location: str) -> Response:
    """A write's answer: no content, the record's URL in Location."""
    return Response(status_code=204, headers={"Location": location})


def concurrency_refused_parts() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return error_parts(
        429,
        "CONCURRENCY_LIMIT_EXCEEDED",
        "Concurrent request limit exceeded. Request blocked.",
    )


def request_limit_parts(retry_after: int) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    status, headers, body = error_parts(
        429, "REQUEST_LIMIT_EXCEEDED", "Request limit exceeded for this integration. Try again later."
    )
    return status, [*headers, (b"retry-after", str(retry_after).encode())], body


def unexpected_parts() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return error_parts(500, "UNEXPECTED_ERROR", "An unexpected error occurred. Error ID: sandbox-fault")
