"""Posting the invoice to the ERP, marking its work billed, and handing it to InvoiceToCash.

The order is the guarantee: entries are marked billed only after the ERP confirmed the invoice, and a
failure after posting waits for a person (and the `retry` signal) rather than risk billing work twice.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.erp import (
        BOOKED_DIFFERENTLY,
        INVOICE_VOIDED,
        VOID_REFUSED,
        ErpActivities,
        PostInvoiceInput,
    )
    from activities.ledger import LedgerActivities, MarkPostingBilledInput
    from activities.psa import MarkBilledInput, PsaActivities
    from canonical import (
        BillingModel,
        ExceptionOwner,
        Invoice,
        LegalEntity,
        Money,
        PostedInvoice,
        ProjectContract,
        ReceivablesSummary,
    )
    from domain.billing_policy import next_period
    from runs.invoice_to_cash import InvoiceToCashInput
    from runs.invoice_to_cash import workflow_id as invoice_to_cash_id
    from runs.time_to_billing import Collection, RetryRequest, TimeToBillingInput, TimeToBillingResult
    from workflows.invoice_to_cash import InvoiceToCash
    from workflows.options import LEDGER_CALL, POSTING_CALL, VENDOR_CALL

from workflows.billing.run_state import BillingRun

# Posting that voids what the ERP booked beyond the entity's tolerance, tells finance what the ERP did, and
# re-posts under a new key after a void.
REPOST_AFTER_VOID = "posting-reposts-after-void"
# Failures that leave the invoice booked differently (voided, or standing because the ERP refused the void).
_BOOKED_DIFFERENTLY = (BOOKED_DIFFERENTLY, INVOICE_VOIDED, VOID_REFUSED)


class Posting(BillingRun):
    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        self._retry_requested = True

    async def _post(
        self, input: TimeToBillingInput, contract: ProjectContract, invoice: Invoice, key: str
    ) -> PostedInvoice:
        """Post once; a refusal retrying cannot fix waits for a person and a `retry`, entries unbilled."""
        reposts = 0
        while True:
            self._set_stage("posting")
            try:
                posted = (
                    await workflow.execute_activity_method(
                        ErpActivities.post_invoice,
                        PostInvoiceInput(invoice=invoice, idempotency_key=key, repost=reposts),
                        **POSTING_CALL,
                    )
                ).posted
            except ActivityError as failure:
                owner, problem = _posting_problem(failure)
                # Only a failure recorded histories never hold reaches the patch, so they replay unmarked.
                kind = failure.cause.type if isinstance(failure.cause, ApplicationError) else None
                booked = kind in _BOOKED_DIFFERENTLY and workflow.patched(REPOST_AFTER_VOID)
                self._posting_problem = problem
                await self._wait_for_fix(
                    input,
                    owner,
                    # The ERP did not refuse: it booked, and the problem says what and what became of it.
                    problem
                    if booked
                    else f"{contract.erp} refused invoice {invoice.reference} ({invoice.total}): {problem}",
                    key="posting-rejected",
                    stage="posting_rejected",
                    record={
                        "project_id": input.project_id,
                        "period": input.period,
                        "erp": contract.erp,
                        "reference": invoice.reference,
                        "idempotency_key": key,
                        "total": str(invoice.total),
                        "problem": problem,
                        **(_booked_record(failure) if booked else {}),
                    },
                )
                if booked and kind != VOID_REFUSED:
                    # The ERP's idempotency store keeps the voided invoice under the key it was posted with:
                    # posting under that key again would only hand the voided one back.
                    reposts += 1
                continue
            self._posting_problem = None
            self._invoice_number = posted.number
            return posted

    async def _wait_for_fix(
        self,
        input: TimeToBillingInput,
        owner: ExceptionOwner,
        reason: str,
        *,
        key: str,
        stage: str,
        record: dict[str, object],
    ) -> None:
        """Park the run with an exception for `owner` until the exceptions queue sends `retry`."""
        self._retry_requested = False
        await self._raise(input, owner, reason, key=key, record=record)
        self._set_stage(stage, owner)
        await workflow.wait_condition(lambda: self._retry_requested)
        await self._audit("retried", input, {"after": stage, "reason": reason})

    async def _finish(
        self,
        input: TimeToBillingInput,
        contract: ProjectContract,
        entity: LegalEntity,
        state: Collection,
    ) -> TimeToBillingResult:
        """Mark billed (only now that the ERP confirmed), record it, and hand the invoice to InvoiceToCash."""
        posted, key, rated = state.posted, state.idempotency_key, state.rated
        assert posted is not None and key is not None
        self._invoice_number = posted.number
        # Only after the ERP confirmed: a crash before this point re-posts under the same key and
        # gets the same invoice back, so entries can never be billed on two invoices.
        self._set_stage("marking_billed")
        times, expenses = list(rated.time_entry_ids), list(rated.expense_ids)
        size = input.mark_billed_chunk
        chunks = max(1, -(-max(len(times), len(expenses)) // size))
        while state.marked_chunks < chunks:
            start = state.marked_chunks * size
            try:
                await workflow.execute_activity_method(
                    PsaActivities.mark_billed,
                    MarkBilledInput(
                        time_entry_ids=times[start : start + size],
                        expense_ids=expenses[start : start + size],
                        invoice_number=posted.number,
                        milestone_ids=list(rated.milestone_ids) if state.marked_chunks == 0 else [],
                    ),
                    **VENDOR_CALL,
                )
            except ActivityError as failure:
                # The invoice exists; entries left unmarked could be billed again, so a person looks first.
                await self._wait_for_fix(
                    input,
                    ExceptionOwner.INTEGRATION_SUPPORT,
                    f"invoice {posted.number} is posted but marking its entries billed in {input.psa} "
                    f"failed: {_posting_problem(failure)[1]}",
                    key="marking-failed",
                    stage="marking_failed",
                    record={"project_id": input.project_id, "period": input.period, "invoice": posted.number},
                )
                continue
            state = state.model_copy(update={"marked_chunks": state.marked_chunks + 1})
            self._continue_if_history_is_long(input, state)
        await workflow.execute_local_activity_method(
            LedgerActivities.mark_posting_billed,
            MarkPostingBilledInput(idempotency_key=key),
            **LEDGER_CALL,
        )
        drawdown = None
        if contract.contract.billing_model == BillingModel.RETAINER:
            drawdown = Money(amount=rated.covered_value, currency=contract.contract.currency)
        await self._audit(
            "invoice_posted",
            input,
            {
                "erp": posted.erp,
                "invoice_id": posted.invoice_id,
                "number": posted.number,
                "total": str(posted.total),
                "idempotency_key": key,
                "adjustment": state.adjustment,
                **(
                    {
                        "retainer": str(contract.contract.retainer_amount),
                        "drawdown": str(drawdown),
                        "drawdown_hours": str(rated.covered_hours),
                    }
                    if drawdown is not None
                    else {}
                ),
            },
        )

        self._set_stage("following_payment")
        cash_id = invoice_to_cash_id(posted.erp, posted.invoice_id)
        await workflow.start_child_workflow(
            InvoiceToCash.run,
            InvoiceToCashInput(
                erp=posted.erp,
                invoice_id=posted.invoice_id,
                invoice_number=posted.number,
                project_id=input.project_id,
                psa=input.psa,
                crm=contract.crm,
                opportunity_id=contract.opportunity_id,
                account_id=contract.account_id,
                account_owner_id=contract.account_owner_id,
                legal_entity=entity.code,
                poll_interval_seconds=input.invoice_poll_interval_seconds,
                as_posted=ReceivablesSummary.of(posted.status) if posted.status is not None else None,
            ),
            id=cash_id,
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
        if drawdown is not None and not state.adjustment:
            # A retainer bills every month whether or not time was logged: line up next month's run.
            await self._start_billing(input, next_period(input.period))
        self._set_stage("done")
        return self._result(
            input,
            "posted",
            key=key,
            invoice=posted,
            time_entries_billed=len(rated.time_entry_ids),
            expenses_billed=len(rated.expense_ids),
            milestones_billed=len(rated.milestone_ids),
            rejected_items=rated.rejected_count,
            invoice_to_cash_workflow_id=cash_id,
            retainer_drawdown=drawdown,
        )


def _posting_problem(failure: ActivityError) -> tuple[ExceptionOwner, str]:
    """Who can fix a failed post and the ERP's own words for it."""
    cause = failure.cause
    if not isinstance(cause, ApplicationError):
        # Retries ran out (the ERP was down for hours): integration support looks first.
        return ExceptionOwner.INTEGRATION_SUPPORT, f"posting kept failing: {cause or failure}"
    detail = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    message = str(detail.get("message") or cause.message)
    # Field errors add what the message does not already say (Tryton repeats them in its message).
    fields = [
        f"{error.get('field')}: {error.get('message')}"
        for error in detail.get("field_errors") or []
        if isinstance(error, dict) and str(error.get("message") or "") not in message
    ]
    if fields:
        message += " (" + "; ".join(fields) + ")"
    owner = (
        ExceptionOwner.FINANCE
        if cause.type in ("Rejected", "NotFound", *_BOOKED_DIFFERENTLY)
        else ExceptionOwner.INTEGRATION_SUPPORT
    )
    return owner, message


def _booked_record(failure: ActivityError) -> dict[str, object]:
    """What the ERP booked, for the exception's record: both totals and the invoice voided (or standing)."""
    cause = failure.cause
    assert isinstance(cause, ApplicationError)
    detail = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
    fields = ("erp_total", "computed_total", "tolerance", "voided_invoice", "standing_invoice", "invoice_id")
    return {field: detail[field] for field in fields if field in detail}
