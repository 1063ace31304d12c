"""InvoiceToCash: follow one invoice until it is paid, voided or written off, telling PSA and CRM."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pssync.activities.crm import CrmActivities, PushReceivablesToCrmInput
    from pssync.activities.erp import ErpActivities, GetInvoiceStatusInput
    from pssync.activities.ledger import AuditInput, LedgerActivities
    from pssync.activities.psa import PsaActivities, PushFinancialsToPsaInput
    from pssync.canonical import InvoiceState, ReceivablesSummary
    from pssync.workflows import search_attributes as sa
    from pssync.workflows.options import LEDGER_CALL, VENDOR_CALL

# Polls per run before continuing as new: a month of hourly polls stays a small history.
CHECKS_BEFORE_CONTINUE = 500
FINAL_STATES = (InvoiceState.PAID, InvoiceState.VOIDED, InvoiceState.WRITTEN_OFF)


def workflow_id(erp: str, invoice_id: str) -> str:
    return f"invoice-to-cash:{erp}:{invoice_id}"


class InvoiceToCashInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    invoice_id: str
    invoice_number: str
    project_id: str
    psa: str
    crm: str
    opportunity_id: str
    account_id: str
    account_owner_id: str | None = None
    legal_entity: str
    # Payments have no webhook: they are polled. Invoice webhooks only make the next poll come sooner.
    poll_interval_seconds: int = 3600
    last_pushed: ReceivablesSummary | None = None


class InvoiceChanged(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_type: str | None = None
    event_id: str | None = None


class InvoiceToCashStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    invoice_id: str
    summary: ReceivablesSummary | None
    checks: int
    nudges: int


class InvoiceToCashResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: str  # paid | voided | written_off
    invoice_id: str
    invoice_number: str
    summary: ReceivablesSummary


@workflow.defn
class InvoiceToCash:
    def __init__(self) -> None:
        self._stage = "starting"
        self._invoice_id = ""
        self._summary: ReceivablesSummary | None = None
        self._checks = 0
        self._nudges = 0
        self._nudged = False

    @workflow.signal
    def invoice_changed(self, change: InvoiceChanged) -> None:
        self._nudges += 1
        self._nudged = True

    @workflow.query
    def status(self) -> InvoiceToCashStatus:
        return InvoiceToCashStatus(
            stage=self._stage,
            invoice_id=self._invoice_id,
            summary=self._summary,
            checks=self._checks,
            nudges=self._nudges,
        )

    @workflow.run
    async def run(self, input: InvoiceToCashInput) -> InvoiceToCashResult:
        self._invoice_id = input.invoice_id
        self._summary = input.last_pushed
        workflow.upsert_search_attributes(
            [
                sa.PROJECT_ID.value_set(input.project_id),
                sa.OPPORTUNITY_ID.value_set(input.opportunity_id),
                sa.LEGAL_ENTITY.value_set(input.legal_entity),
                sa.SYNC_STAGE.value_set("awaiting_payment"),
            ]
        )
        self._stage = "awaiting_payment"
        while True:
            self._nudged = False
            self._checks += 1
            status = (
                await workflow.execute_activity_method(
                    ErpActivities.get_invoice_status,
                    GetInvoiceStatusInput(erp=input.erp, invoice_id=input.invoice_id),
                    **VENDOR_CALL,
                )
            ).status
            summary = ReceivablesSummary.of(status)
            if summary != self._summary:
                await self._push(input, summary)
            if summary.state in FINAL_STATES:
                return await self._finish(input, summary)
            if self._checks >= CHECKS_BEFORE_CONTINUE:
                workflow.continue_as_new(input.model_copy(update={"last_pushed": self._summary}))
            try:
                await workflow.wait_condition(
                    lambda: self._nudged, timeout=timedelta(seconds=input.poll_interval_seconds)
                )
            except TimeoutError:
                pass

    async def _push(self, input: InvoiceToCashInput, summary: ReceivablesSummary) -> None:
        """Tell the PSA and the CRM; both writes are idempotent, so a replayed push changes nothing."""
        await workflow.execute_activity_method(
            PsaActivities.push_financials_to_psa,
            PushFinancialsToPsaInput(project_id=input.project_id, summary=summary),
            **VENDOR_CALL,
        )
        await workflow.execute_activity_method(
            CrmActivities.push_receivables_to_crm,
            PushReceivablesToCrmInput(
                opportunity_id=input.opportunity_id, account_id=input.account_id, summary=summary
            ),
            **VENDOR_CALL,
        )
        self._summary = summary

    async def _finish(self, input: InvoiceToCashInput, summary: ReceivablesSummary) -> InvoiceToCashResult:
        outcome = summary.state.value
        self._stage = outcome
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set(outcome)])
        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(
                action=f"invoice_{outcome}",
                entity="invoice",
                key=f"{input.erp}:{input.invoice_id}",
                detail={"number": input.invoice_number, "amount_paid": str(summary.amount_paid)},
            ),
            **LEDGER_CALL,
        )
        return InvoiceToCashResult(
            outcome=outcome, invoice_id=input.invoice_id, invoice_number=input.invoice_number, summary=summary
        )
