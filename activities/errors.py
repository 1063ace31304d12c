"""Turn connector errors into Temporal's language: retry (when, how soon) or stop and tell a person."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from connectors.errors import ConnectorError, RateLimited, Rejected

# Types a workflow can match on (ApplicationError.type).
NON_RETRYABLE_TYPES = ("Rejected", "NotFound", "Conflict", "AuthFailed")


def to_application_error(exc: ConnectorError) -> ApplicationError:
    details: dict[str, object] = {
        "system": exc.system,
        "status_code": exc.status_code,
        "message": exc.message,
    }
    if isinstance(exc, Rejected):
        details["field_errors"] = [
            {"field": error.field, "message": error.message, "code": error.code} for error in exc.field_errors
        ]
    if exc.retryable:
        delay = None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            # The vendor told us when to come back: that beats our back-off schedule.
            delay = timedelta(seconds=exc.retry_after)
        return ApplicationError(
            f"{exc.system}: {exc.message}",
            details,
            type=exc.kind,
            non_retryable=False,
            next_retry_delay=delay,
            category=ApplicationErrorCategory.BENIGN,
        )
    return ApplicationError(f"{exc.system}: {exc.message}", details, type=exc.kind, non_retryable=True)


@asynccontextmanager
async def connector_errors() -> AsyncIterator[None]:
    try:
        yield
    except ConnectorError as exc:
        raise to_application_error(exc) from exc
