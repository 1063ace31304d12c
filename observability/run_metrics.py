"""Runs started and completed, per workflow type, counted by a worker interceptor around every workflow.

It records through the workflow's metric meter, which records nothing while a history replays, so a run
replayed on another worker (or after a restart) is not counted twice, and it adds no command to any
history. A continue-as-new is the same business run going on: it is neither a start nor an end.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import FailureError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from observability import metrics


class _CountRuns(WorkflowInboundInterceptor):
    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        if workflow.info().continued_run_id is None:
            metrics.run_started()
        try:
            result = await self.next.execute_workflow(input)
        except workflow.ContinueAsNewError:
            raise
        except asyncio.CancelledError:
            metrics.run_completed("cancelled")
            raise
        except FailureError:
            # Only these fail the run; any other exception fails the workflow task, which Temporal retries.
            metrics.run_completed("failed")
            raise
        metrics.run_completed("completed")
        return result


class RunMetricsInterceptor(Interceptor):
    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _CountRuns
