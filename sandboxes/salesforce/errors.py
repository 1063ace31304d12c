"""Salesforce's REST error shape: a JSON list of {message, errorCode[, fields]} with an HTTP status."""

from __future__ import annotations

from typing import Any


class SfError(Exception):
    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: list[str] | None = None,
        *,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        # DML errors carry a fields list (possibly empty); request-level errors carry none.
        self.fields = fields
        self._body = body
        self.headers = headers or {}

    def body(self) -> Any:
        if self._body is not None:
            return self._body
        error: dict[str, Any] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            error["fields"] = self.fields
        return [error]


def not_found(message: str = "The requested resource does not exist") -> SfError:
    return SfError(404, "NOT_FOUND", message)


def malformed_query(message: str) -> SfError:
    return SfError(400, "MALFORMED_QUERY", message)


def json_parser_error(message: str) -> SfError:
    return SfError(400, "JSON_PARSER_ERROR", message)


def session_expired() -> SfError:
    return SfError(
        401, "INVALID_SESSION_ID", "Session expired or invalid", headers={"WWW-Authenticate": "Token"}
    )
