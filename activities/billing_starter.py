"""Start (or nudge) a TimeToBilling run from the PSA feed poller: signal-with-start by business key.

A run that has finished is followed by a new one only when the approvals name work the PSA still holds
billable and unbilled: a feed read over many polls keeps naming, after the run, work it already billed.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import connector_errors
from canonical import LegalEntity
from connectors.roles import PsaConnector
from runs.starts import start_billing
from runs.time_to_billing import TimeToBillingInput, workflow_id


class StartBillingInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    period: str
    psa: str
    entities: tuple[LegalEntity, ...]
    settle_seconds: int
    invoice_poll_interval_seconds: int
    event_ids: tuple[str, ...]
    # The time entries, expenses and milestones those events name (`canonical.events.item_key`s), by which
    # the run and this starter tell what is still owed.
    item_ids: tuple[str, ...] = ()


class StartBillingResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    workflow_id: str
    run_id: str | None
    # False when the run had finished and nothing the approvals named was still owed.
    nudged: bool = True


class StarterActivities:
    def __init__(self, client: Client, task_queue: str, psa: PsaConnector | None = None) -> None:
        self._client = client
        self._task_queue = task_queue
        self._psa = psa

    @activity.defn
    async def start_billing(self, input: StartBillingInput) -> StartBillingResult:
        return await self.nudge(input)

    async def nudge(self, input: StartBillingInput) -> StartBillingResult:
        """A running billing run is signalled; a finished one is followed by a new run for late entries."""
        if input.item_ids and await self._finished_owing_nothing(input):
            return StartBillingResult(
                workflow_id=workflow_id(input.project_id, input.period), run_id=None, nudged=False
            )
        handle = await start_billing(
            self._client,
            task_queue=self._task_queue,
            input=TimeToBillingInput(
                project_id=input.project_id,
                period=input.period,
                psa=input.psa,
                entities=input.entities,
                settle_seconds=input.settle_seconds,
                invoice_poll_interval_seconds=input.invoice_poll_interval_seconds,
            ),
            event_ids=input.event_ids,
            item_ids=input.item_ids,
        )
        return StartBillingResult(workflow_id=handle.id, run_id=handle.result_run_id)

    async def _finished_owing_nothing(self, input: StartBillingInput) -> bool:
        if self._psa is None:
            return False
        handle = self._client.get_workflow_handle(workflow_id(input.project_id, input.period))
        try:
            status = (await handle.describe()).status
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        if status != WorkflowExecutionStatus.COMPLETED:
            return False
        async with connector_errors():
            owed = await self._psa.owed_among(input.project_id, input.item_ids)
        return not owed
