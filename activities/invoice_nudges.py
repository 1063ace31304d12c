"""Tell the InvoiceToCash runs that money moved on their invoices: the ERP payment poller's only effect.

A nudge makes a run read its invoice now instead of at its next scheduled check; the run, not the nudge,
decides what the payment means."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.client import Client

from runs.invoice_to_cash import InvoiceChanged, workflow_id
from runs.starts import signal_if_running


class PaymentSeen(BaseModel):
    model_config = ConfigDict(frozen=True)
    payment_id: str
    invoice_id: str


class NudgeInvoiceRunsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    payments: tuple[PaymentSeen, ...]


class NudgeInvoiceRunsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    nudged: int
    # Payments on invoices no run follows (paid before ps-sync, or runs already closed): nothing to do.
    not_followed: int


class InvoiceNudgeActivities:
    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn
    async def nudge_invoice_runs(self, input: NudgeInvoiceRunsInput) -> NudgeInvoiceRunsResult:
        nudged = not_followed = 0
        for payment in input.payments:
            delivered = await signal_if_running(
                self._client,
                workflow_id(input.erp, payment.invoice_id),
                "invoice_changed",
                InvoiceChanged(event_type="PAYMENT", event_id=f"payment:{payment.payment_id}"),
            )
            if delivered:
                nudged += 1
            else:
                not_followed += 1
        return NudgeInvoiceRunsResult(nudged=nudged, not_followed=not_followed)
