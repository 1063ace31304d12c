"""ErpPaymentPoller: the ERPs send no payment events (Xero's webhooks cover invoices and contacts only),
so a long-running workflow per ERP lists the payments modified since its last poll (If-Modified-Since)
and nudges the InvoiceToCash run of each paid invoice to read it now.

The cursor lives in this workflow's state and is carried across continue-as-new, so a poller that was
down catches up from where it stopped. A payment only nudges: the run re-reads the invoice from the ERP
before it decides anything, and still checks on its own schedule if a nudge is lost.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.erp import ErpActivities, PaymentsSinceInput
    from activities.invoice_nudges import (
        InvoiceNudgeActivities,
        NudgeInvoiceRunsInput,
        PaymentSeen,
    )
    from runs import search_attributes as sa
    from runs.payment_feed import (
        ErpPaymentPollerInput,
        ErpPaymentPollerStatus,
        PaymentCursor,
    )
    from runs.psa_feed import PollNow
    from workflows.options import VENDOR_CALL

POLLS_BEFORE_CONTINUE = 200
# Payment ids remembered from the overlapping window; more than a poll interval's payments in any firm.
MAX_REMEMBERED = 2000


@workflow.defn
class ErpPaymentPoller:
    def __init__(self) -> None:
        self._erp = ""
        self._polls = 0
        self._seen = 0
        self._nudged = 0
        self._cursor: PaymentCursor | None = None
        self._poll_now = False

    @workflow.signal
    def poll_now(self, request: PollNow) -> None:
        self._poll_now = True

    @workflow.query
    def status(self) -> ErpPaymentPollerStatus:
        return ErpPaymentPollerStatus(
            erp=self._erp,
            polls=self._polls,
            payments_seen=self._seen,
            invoice_runs_nudged=self._nudged,
            cursor=self._cursor,
        )

    @workflow.run
    async def run(self, input: ErpPaymentPollerInput) -> None:
        self._erp, self._cursor = input.erp, input.cursor
        self._seen, self._nudged = input.payments_seen, input.invoice_runs_nudged
        workflow.upsert_search_attributes([sa.SYNC_STAGE.value_set("polling")])
        while True:
            self._poll_now = False
            cursor = self._cursor or PaymentCursor(
                modified_since=workflow.now() - timedelta(seconds=input.first_lookback_seconds)
            )
            result = await workflow.execute_activity_method(
                ErpActivities.payments_since,
                PaymentsSinceInput(erp=input.erp, modified_since=cursor.modified_since),
                **VENDOR_CALL,
            )
            self._polls += 1
            known = set(cursor.recent)
            fresh = [p for p in result.payments if p.id not in known]
            if fresh:
                nudges = await workflow.execute_activity_method(
                    InvoiceNudgeActivities.nudge_invoice_runs,
                    NudgeInvoiceRunsInput(
                        erp=input.erp,
                        payments=tuple(PaymentSeen(payment_id=p.id, invoice_id=p.invoice_id) for p in fresh),
                    ),
                    **VENDOR_CALL,
                )
                self._seen += len(fresh)
                self._nudged += nudges.nudged
            # Only after the runs were nudged: a crash before this reads the same payments again.
            as_of = result.as_of or workflow.now()
            listed = tuple(p.id for p in result.payments)
            self._cursor = PaymentCursor(
                modified_since=as_of - timedelta(seconds=input.overlap_seconds),
                recent=listed[-MAX_REMEMBERED:],
            )
            if self._polls >= POLLS_BEFORE_CONTINUE or workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "cursor": self._cursor,
                            "payments_seen": self._seen,
                            "invoice_runs_nudged": self._nudged,
                        }
                    )
                )
            try:
                await workflow.wait_condition(
                    lambda: self._poll_now, timeout=timedelta(seconds=input.poll_interval_seconds)
                )
            except TimeoutError:
                pass
