"""Every activity logs its outcome as one JSON line carrying workflow id, run id and the business key."""

from __future__ import annotations

import time
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

log = structlog.get_logger("pssync.activity")


def business_key(workflow_id: str | None) -> str:
    """Workflow ids are business keys (`time-to-billing:{project}:{period}`): the key follows the type."""
    return (workflow_id or "").split(":", 1)[-1]


class _ActivityLogContext(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        started = time.perf_counter()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            workflow_type=info.workflow_type,
            activity=info.activity_type,
            attempt=info.attempt,
            business_key=business_key(info.workflow_id),
        ):
            try:
                result = await self.next.execute_activity(input)
            except ApplicationError as err:
                log.warning(
                    "activity_failed",
                    error_type=err.type,
                    retryable=not err.non_retryable,
                    message=err.message,
                    duration_ms=_ms(started),
                )
                raise
            except Exception as err:
                log.warning(
                    "activity_failed",
                    error_type=type(err).__name__,
                    message=str(err)[:500],
                    duration_ms=_ms(started),
                )
                raise
            log.info("activity_completed", duration_ms=_ms(started))
            return result


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


class LogContextInterceptor(Interceptor):
    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLogContext(next)
