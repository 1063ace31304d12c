"""Reading runs through a Temporal server that may be restarting, and workers that may be dead.

Every call here retries what a restart or a lost worker causes (the server unreachable, a query nobody
answers) until its deadline, and says what it waited for when the deadline passes.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowExecutionDescription, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

T = TypeVar("T")
RETRY_SECONDS = 1.0
# One call may hang while the server is down; it is cut short and tried again.
CALL_SECONDS = 10.0
# A server that stays unreachable this long is not restarting: the wait gives up and says so.
UNREACHABLE_SECONDS = 180.0


class RunStuck(RuntimeError):
    """A run did not get where it should within its deadline."""


@dataclass(frozen=True)
class StartedActivity:
    activity: str
    worker_identity: str
    attempt: int


class Runs:
    def __init__(self, client: Client) -> None:
        self.client = client

    async def describe(
        self, workflow_id: str, *, run_id: str | None = None
    ) -> WorkflowExecutionDescription | None:
        """The run as the server has it now; None while it does not exist."""
        give_up = time.monotonic() + UNREACHABLE_SECONDS
        while True:
            try:
                return await asyncio.wait_for(
                    self.client.get_workflow_handle(workflow_id, run_id=run_id).describe(), CALL_SECONDS
                )
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return None
                problem: Exception = err
            except TimeoutError as err:
                problem = err
            _unreachable(give_up, f"describing {workflow_id}", problem)
            await asyncio.sleep(RETRY_SECONDS)

    async def closed(self, workflow_id: str, deadline: float) -> WorkflowExecutionDescription:
        """The latest run under `workflow_id` once it has closed (completed, failed, ...)."""
        while True:
            description = await self.describe(workflow_id)
            if description is not None and description.status not in (None, WorkflowExecutionStatus.RUNNING):
                return description
            if time.monotonic() > deadline:
                state = "not started" if description is None else _status(description)
                raise RunStuck(f"{workflow_id} still {state}")
            await asyncio.sleep(RETRY_SECONDS)

    async def result(self, workflow_id: str, run_id: str, result_type: type[T]) -> T:
        """The result of a run that has completed."""
        give_up = time.monotonic() + UNREACHABLE_SECONDS
        while True:
            try:
                handle = self.client.get_workflow_handle(workflow_id, run_id=run_id, result_type=result_type)
                return await asyncio.wait_for(handle.result(follow_runs=False), CALL_SECONDS)
            except (RPCError, TimeoutError) as err:
                _unreachable(give_up, f"reading the result of {workflow_id}", err)
            await asyncio.sleep(RETRY_SECONDS)

    async def completed_result(self, workflow_id: str, result_type: type[T], deadline: float) -> T:
        description = await self.closed(workflow_id, deadline)
        if description.status != WorkflowExecutionStatus.COMPLETED:
            raise RunStuck(f"{workflow_id} ended {_status(description)} (run {description.run_id})")
        return await self.result(workflow_id, description.run_id, result_type)

    async def query(self, workflow_id: str, query: Any, deadline: float, *, result_type: type[T]) -> T:
        while True:
            try:
                handle = self.client.get_workflow_handle(workflow_id)
                result: T = await asyncio.wait_for(handle.query(query, result_type=result_type), CALL_SECONDS)
                return result
            except (RPCError, TimeoutError) as err:
                if time.monotonic() > deadline:
                    raise RunStuck(f"{workflow_id} answered no query: {err}") from err
            await asyncio.sleep(RETRY_SECONDS)

    async def run_ids(self, workflow_id: str) -> list[tuple[str, WorkflowExecutionStatus | None]]:
        """Every run under the id, newest first, with its status."""
        give_up = time.monotonic() + UNREACHABLE_SECONDS
        while True:
            try:
                return [
                    (execution.run_id, execution.status)
                    async for execution in self.client.list_workflows(f'WorkflowId="{workflow_id}"')
                ]
            except RPCError as err:
                _unreachable(give_up, f"listing the runs of {workflow_id}", err)
            await asyncio.sleep(RETRY_SECONDS)

    async def started_activities(self, workflow_id: str) -> list[StartedActivity]:
        """Activities a worker is running for the run right now (one describe, no retries)."""
        try:
            description = await asyncio.wait_for(
                self.client.get_workflow_handle(workflow_id).describe(), CALL_SECONDS
            )
        except (RPCError, TimeoutError):
            return []
        return [
            StartedActivity(
                activity=pending.activity_type.name,
                worker_identity=pending.last_worker_identity,
                attempt=pending.attempt,
            )
            for pending in description.raw_description.pending_activities
            if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        ]


def _unreachable(give_up: float, doing: str, err: Exception) -> None:
    if time.monotonic() > give_up:
        raise RunStuck(f"Temporal unreachable for {UNREACHABLE_SECONDS:g} s while {doing}: {err}") from err


def _status(description: WorkflowExecutionDescription) -> str:
    return description.status.name.lower() if description.status is not None else "unknown"
