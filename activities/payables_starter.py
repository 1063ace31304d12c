"""Start (or nudge) the Payables runs a period needs: one per supplier owed expenses or subcontracted time on
no bill yet."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.errors import connector_errors
from activities.keepalive import heartbeating
from canonical import Period
from connectors.roles import PsaConnector, PsaPayables
from domain.payables import supplier_for, vendor_supplier
from runs.payables import ExpensesApproved, PayablesInput, start_payables


class StartPayablesRunsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    psa: str
    period: str
    poll_interval_seconds: int


class StartPayablesRunsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    workflow_ids: tuple[str, ...]


class PayablesStarterActivities:
    def __init__(self, client: Client, psa: PsaConnector, task_queue: str) -> None:
        self._client = client
        self._psa = psa
        self._task_queue = task_queue

    @activity.defn
    async def start_payables_runs(self, input: StartPayablesRunsInput) -> StartPayablesRunsResult:
        """A running supplier run is signalled; a finished one is followed by a new run for what is new."""
        psa = self._psa
        if not isinstance(psa, PsaPayables):
            raise ApplicationError(
                f"the PSA connector {psa.system!r} offers no payables",
                type="NotConfigured",
                non_retryable=True,
            )
        owed: dict[str, list[str]] = {}
        async with connector_errors(), heartbeating():
            async for page in psa.payable_expenses(Period(value=input.period)):
                for expense in page.items:
                    if expense.bill_number is None:
                        owed.setdefault(supplier_for(psa.system, expense).key, []).append(expense.id)
            # A firm whose people logged time, and named on no expense, is owed a bill all the same.
            async for time_page in psa.subcontracted_time(Period(value=input.period)):
                for entry in time_page.items:
                    if entry.bill_number is None:
                        owed.setdefault(vendor_supplier(entry.supplier).key, [])
            started: list[str] = []
            # One at a time: a period's suppliers are few, and the server is not flooded with starts.
            for supplier_key, expense_ids in owed.items():
                handle = await start_payables(
                    self._client,
                    task_queue=self._task_queue,
                    input=PayablesInput(
                        psa=input.psa,
                        supplier_key=supplier_key,
                        period=input.period,
                        poll_interval_seconds=input.poll_interval_seconds,
                    ),
                    approved=ExpensesApproved(expense_ids=tuple(expense_ids)),
                )
                started.append(handle.id)
        return StartPayablesRunsResult(workflow_ids=tuple(started))
