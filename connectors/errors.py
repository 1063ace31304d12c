"""The one error taxonomy every connector raises.

Activities decide what is retryable from the class alone, so a connector never retries by itself:
Temporal owns retries and every attempt shows in the workflow history.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    field: str | None
    message: str
    code: str | None = None


class ConnectorError(Exception):
    retryable: bool = False

    def __init__(self, message: str, *, system: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.status_code = status_code

    @property
    def kind(self) -> str:
        return type(self).__name__


class RateLimited(ConnectorError):
    retryable = True

    def __init__(
        self, message: str, *, system: str, retry_after: float | None = None, status_code: int | None = 429
    ) -> None:
        super().__init__(message, system=system, status_code=status_code)
        self.retry_after = retry_after


class Unavailable(ConnectorError):
    retryable = True


class Timeout(ConnectorError):
    retryable = True


class AuthFailed(ConnectorError):
    """Credentials were refused even after one refresh; a person must fix the configuration."""


class Rejected(ConnectorError):
    """The vendor refused the content; retrying the same request cannot succeed."""

    def __init__(
        self,
        message: str,
        *,
        system: str,
        field_errors: list[FieldError] | None = None,
        status_code: int | None = 400,
    ) -> None:
        super().__init__(message, system=system, status_code=status_code)
        self.field_errors = field_errors or []


class NotFound(ConnectorError):
    pass


class Conflict(ConnectorError):
    """The vendor holds a different version of the record, or several records match one key."""
