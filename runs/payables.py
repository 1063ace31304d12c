"""The messages of a Payables run: its input, signals, status and result, its id and how it is started.

One run per PSA, supplier (the consultant owed reimbursable expenses, or a vendor named on expenses or as a
subcontractor's firm) and period: `payables:{psa}:{supplier key}:{period}`. Kept apart from the workflow so
that callers (the CLI, the stack, tests) start and signal runs without importing workflow code.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy

from canonical import Money

WORKFLOW_TYPE = "Payables"
# Bill checks per run before continuing as new: a year of hourly checks stays a small history.
CHECKS_BEFORE_CONTINUE = 500


def workflow_id(psa: str, supplier_key: str, period: str) -> str:
    return f"payables:{psa}:{supplier_key}:{period}"


class TrackedBill(BaseModel):
    """A bill this run posted and follows until it is paid."""

    model_config = ConfigDict(frozen=True)
    legal_entity: str
    bill_id: str
    number: str
    total: Money
    expense_ids: tuple[str, ...]
    # Subcontracted time on the bill (marked in the PSA as on it, then as paid).
    time_entry_ids: tuple[str, ...] = ()
    paid: bool = False
    voided: bool = False

    @property
    def settled(self) -> bool:
        return self.paid or self.voided


class PayablesInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    psa: str
    supplier_key: str
    period: str
    # ERPs send no bill payment events that both offer: bills are read every interval until paid.
    poll_interval_seconds: int = 3600
    # Carried when the run continues as new while it waits for payments.
    bills: tuple[TrackedBill, ...] = ()


class ExpensesApproved(BaseModel):
    """A nudge: expenses of the supplier were approved (a finished run is followed by a new one)."""

    model_config = ConfigDict(frozen=True)
    expense_ids: tuple[str, ...] = ()


class BillChanged(BaseModel):
    """A nudge: the bill may have been paid; the next check comes at once."""

    model_config = ConfigDict(frozen=True)
    bill_id: str | None = None


class PayablesStatus(BaseModel):
    model_config = ConfigDict(frozen=True)
    stage: str
    supplier_key: str
    period: str
    bills: tuple[TrackedBill, ...]
    problems: tuple[str, ...]
    checks: int


class PayablesResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # reimbursed: every bill posted is paid and its expenses marked reimbursed; voided: finance voided a bill
    # (an exception says which); nothing_to_bill: nothing owed, or every expense had a problem (`problems`).
    outcome: str
    bills: tuple[TrackedBill, ...]
    problems: tuple[str, ...] = ()


async def start_payables(
    client: Client, *, task_queue: str, input: PayablesInput, approved: ExpensesApproved | None = None
) -> WorkflowHandle[object, object]:
    """Signal-with-start the supplier's run for the period: a running run hears of the approval, a finished
    one is followed by a new run under the same id, which bills only what is on no bill yet."""
    return await client.start_workflow(
        WORKFLOW_TYPE,
        input,
        id=workflow_id(input.psa, input.supplier_key, input.period),
        task_queue=task_queue,
        start_signal="expenses_approved",
        start_signal_args=[approved or ExpensesApproved()],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


SCAN_WORKFLOW_TYPE = "PayablesScan"


def scan_workflow_id(psa: str, period: str | None) -> str:
    return f"payables-scan:{psa}:{period or 'current'}"


class PayablesScanInput(BaseModel):
    """Start (or nudge) a Payables run for every supplier owed expenses on no bill yet."""

    model_config = ConfigDict(frozen=True)
    psa: str
    # None: the month the scan runs in and the month before (expenses are approved after their month ends).
    period: str | None = None
    poll_interval_seconds: int = 3600


class PayablesScanResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    periods: tuple[str, ...]
    started: tuple[str, ...]
