"""Start (or nudge) a TimeToBilling run from the PSA feed poller: signal-with-start by business key."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import Client

from canonical import LegalEntity
from runs.starts import start_billing
from runs.time_to_billing import TimeToBillingInput


class StartBillingInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    period: str
    psa: str
    entities: tuple[LegalEntity, ...]
    settle_seconds: int
    invoice_poll_interval_seconds: int
    event_ids: tuple[str, ...]
    # The time entries, expenses and milestones those events name: a run that already billed them all owes
    # no follow-up for these events.
    item_ids: tuple[str, ...] = ()


class StartBillingResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    workflow_id: str
    run_id: str | None


class StarterActivities:
    def __init__(self, client: Client, task_queue: str) -> None:
        self._client = client
        self._task_queue = task_queue

    @activity.defn
    async def start_billing(self, input: StartBillingInput) -> StartBillingResult:
        """A running billing run is signalled; a finished one is followed by a new run for late entries."""
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
