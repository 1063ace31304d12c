"""InvoiceToCash: follow one invoice until it is paid, credited, voided or written off, telling PSA and CRM.

Rules (issue 5):
- The ERP is read at every check (hourly by default; an invoice webhook makes the next check come at once,
  since payments have no webhook). Every change of the invoice's money state (partial payments, credit
  notes, voids) is pushed to the PSA (project financials) and the CRM (receivables summary); both writes
  are idempotent, so a repeated push changes nothing.
- The run ends when the ERP shows the invoice settled; the result says how: `paid` (cash came in, credit
  notes may have settled part), `credited` (credit notes settled all of it, no cash), `voided`, or
  `written_off` (finance's decision). See domain.settlement.
- Overpayment (more paid and credited than the gross total) still ends the run as paid, and raises an
  exception for finance to refund or reallocate the excess; the run's last stage is `overpaid`.
- Dunning follows domain.dunning: a CRM task for the account owner at due date + 7, + 14 and + 30 days,
  each recorded in the status query, the SyncStage search attribute (`dunning_stage_<n>`) and the ledger
  audit; the last stage also hands the invoice to finance as an exception. A payment seen at any check
  stops the reminders at once: every reminder follows a fresh read of the invoice.
- Write-off (the `write_off_invoice` update, with a reason and the amount due as the person saw it):
  ps-sync issues a credit note in the ERP for what is still due, carrying the reason and the authenticated
  person, then reports the invoice as written off. The update is refused unless the run is following an
  invoice with money due, no write-off is already under way, and the amount named is what is due; should a
  payment change the amount before the credit is made, the write-off is dropped and finance is told. The
  shipped `write_off` signal no longer writes anything off in a new run. A credit note rather than a note in
  our ledger only, because it is the one write both ERPs offer that takes the amount off the customer's
  balance: the ERP's aged receivables, the CRM's open receivables and reconciliation then all agree. If
  the invoice settles before the credit is made, the settlement wins and the request is recorded.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.crm import CreateCrmTaskInput, CrmActivities, PushReceivablesToCrmInput
    from activities.erp import ErpActivities, GetInvoiceStatusInput, WriteOffInvoiceInput
    from activities.ledger import AuditInput, LedgerActivities, RaiseExceptionInput
    from activities.psa import PsaActivities, PushFinancialsToPsaInput
    from canonical import ExceptionOwner, InvoiceState, Money, ReceivablesSummary
    from domain import dunning
    from domain.settlement import Settlement, settlement
    from runs import search_attributes as sa
    from runs.invoice_to_cash import (
        InvoiceChanged,
        InvoiceToCashInput,
        InvoiceToCashResult,
        InvoiceToCashStatus,
        WriteOffAccepted,
        WriteOffRequest,
    )
    from workflows.options import LEDGER_CALL, VENDOR_CALL

PROCESS = "invoice_to_cash"
# Checks per run before continuing as new: a year of hourly checks stays within small histories.
CHECKS_BEFORE_CONTINUE = 500
# The `write_off` signal once wrote off, unchecked, at any time, for whoever its body named. Recorded
# histories replay it as it was taken; a new run writes off only through the validated update.
WRITE_OFF_ONLY_BY_UPDATE = "write-off-only-by-validated-update"
# A run given the invoice as its posting found it starts from that instead of reading it back at once.
FIRST_CHECK_FROM_POSTING = "first-check-from-posting"


class WriteOffRefused(ApplicationError):
    """A write-off the run did not take; the message is what the person is told."""

    def __init__(self, message: str) -> None:
        super().__init__(message, type="WriteOffRefused", non_retryable=True)


@workflow.defn
class InvoiceToCash:
    def __init__(self) -> None:
        self._stage = "starting"
        self._invoice_id = ""
        self._summary: ReceivablesSummary | None = None
        self._checks = 0
        self._nudges = 0
        self._nudged = False
        self._dunning_stage = 0
        self._dunning_skipped: tuple[int, ...] = ()
        self._write_off: WriteOffRequest | None = None
        self._write_off_attempts = 0
        self._overpaid: Money | None = None
        # The invoice as last read from the ERP: what a write-off may be asked for.
        self._seen: ReceivablesSummary | None = None

    @workflow.signal
    def invoice_changed(self, change: InvoiceChanged) -> None:
        self._nudges += 1
        self._nudged = True

    @workflow.signal(unfinished_policy=workflow.HandlerUnfinishedPolicy.ABANDON)
    async def write_off(self, request: WriteOffRequest) -> None:
        if workflow.patched(WRITE_OFF_ONLY_BY_UPDATE):
            # A signal's sender is never told it was ignored, and its actor is whatever the sender wrote:
            # the audit is where someone still using it finds out.
            workflow.logger.warning(
                "ignored the write_off signal (actor %r): write-offs are taken only as the "
                "write_off_invoice update",
                request.actor,
            )
            await workflow.execute_local_activity_method(
                LedgerActivities.audit,
                AuditInput(
                    action="write_off_signal_ignored",
                    entity="invoice",
                    key=workflow.info().workflow_id,
                    detail={"claimed_actor": request.actor, "stage": self._stage},
                ),
                **LEDGER_CALL,
            )
            return
        # The first request stands; finance asking twice must not write off twice.
        if self._write_off is None:
            self._write_off = request

    @workflow.update
    def write_off_invoice(self, request: WriteOffRequest) -> WriteOffAccepted:
        """Write off what is still due; refused unless money is due and the caller names that amount."""
        # Checked again here: only what the handler sees, one update at a time, decides who wins.
        seen = self._refuse_unless_write_off_possible(request)
        self._write_off = request
        return WriteOffAccepted(
            invoice_number=seen.invoice_number, amount_due=seen.amount_due, requested_by=request.actor
        )

    @write_off_invoice.validator
    def _write_off_possible(self, request: WriteOffRequest) -> None:
        self._refuse_unless_write_off_possible(request)

    def _refuse_unless_write_off_possible(self, request: WriteOffRequest) -> ReceivablesSummary:
        if self._write_off is not None:
            raise WriteOffRefused(
                f"a write-off requested by {self._write_off.actor} is already under way: nothing else to do"
            )
        following = self._stage == "awaiting_payment" or self._stage.startswith("dunning_stage_")
        seen = self._seen
        if not following or seen is None:
            raise WriteOffRefused(
                f"this run is not following an invoice with money due (stage {self._stage})"
            )
        if seen.amount_due.amount <= 0:
            raise WriteOffRefused(f"invoice {seen.invoice_number} has nothing due: nothing to write off")
        if not request.reason.strip():
            raise WriteOffRefused("a write-off needs a reason: it is written on the credit note")
        if request.expected_due is None:
            raise WriteOffRefused(
                f"a write-off must name the amount due it is about: invoice {seen.invoice_number} has "
                f"{seen.amount_due} due"
            )
        if request.expected_due != seen.amount_due:
            raise WriteOffRefused(
                f"the amount due on invoice {seen.invoice_number} is {seen.amount_due}, not "
                f"{request.expected_due}: it changed since you looked"
            )
        return seen

    @workflow.query
    def status(self) -> InvoiceToCashStatus:
        return InvoiceToCashStatus(
            stage=self._stage,
            invoice_id=self._invoice_id,
            summary=self._summary,
            checks=self._checks,
            nudges=self._nudges,
            dunning_stage=self._dunning_stage,
            dunning_skipped=self._dunning_skipped,
            write_off_requested_by=self._write_off.actor if self._write_off else None,
            overpaid=self._overpaid,
        )

    def _set_stage(self, stage: str, owner: ExceptionOwner | None = None) -> None:
        self._stage = stage
        workflow.upsert_search_attributes(
            [
                sa.SYNC_STAGE.value_set(stage),
                sa.EXCEPTION_OWNER.value_set(owner.value) if owner else sa.EXCEPTION_OWNER.value_unset(),
            ]
        )

    @workflow.run
    async def run(self, input: InvoiceToCashInput) -> InvoiceToCashResult:
        self._invoice_id = input.invoice_id
        self._summary = input.last_pushed
        self._dunning_stage = input.dunning_stage
        workflow.upsert_search_attributes(
            [
                sa.PROJECT_ID.value_set(input.project_id),
                sa.OPPORTUNITY_ID.value_set(input.opportunity_id),
                sa.LEGAL_ENTITY.value_set(input.legal_entity),
            ]
        )
        self._set_stage(f"dunning_stage_{self._dunning_stage}" if self._dunning_stage else "awaiting_payment")
        as_posted = input.as_posted
        while True:
            self._nudged = False
            summary: ReceivablesSummary | None
            if as_posted is not None and workflow.patched(FIRST_CHECK_FROM_POSTING):
                summary = self._seen = as_posted
            else:
                summary = await self._check(input)
            as_posted = None
            if summary is not None:
                settled = settlement(summary)
                if settled.final:
                    await self._push(input, summary)
                    return await self._finish(input, summary, settled)
                if self._write_off is not None:
                    finished = await self._write_off_now(input, summary, self._write_off)
                    if finished is not None:
                        return finished
                    continue
                await self._push(input, summary)
                stage = dunning.reached(summary, workflow.now(), done=self._dunning_stage)
                if stage is not None:
                    await self._dun(input, summary, stage)
            if self._write_off is None and not self._nudged and self._history_is_long():
                workflow.continue_as_new(
                    input.model_copy(
                        update={
                            "last_pushed": self._summary,
                            "dunning_stage": self._dunning_stage,
                            "as_posted": None,
                        }
                    )
                )
            await self._wait(input, summary or self._summary)

    async def _check(self, input: InvoiceToCashInput) -> ReceivablesSummary | None:
        """The invoice as the ERP sees it now; None (and an exception) when it cannot be read for good,
        in which case the run keeps checking: the invoice may come back (a restored connection, a fix)."""
        self._checks += 1
        try:
            status = (
                await workflow.execute_activity_method(
                    ErpActivities.get_invoice_status,
                    GetInvoiceStatusInput(erp=input.erp, invoice_id=input.invoice_id),
                    **VENDOR_CALL,
                )
            ).status
        except ActivityError as failure:
            await self._raise(
                input,
                ExceptionOwner.INTEGRATION_SUPPORT,
                f"invoice {input.invoice_number} cannot be read from {input.erp}: {failure.cause or failure}",
                key="read",
            )
            return None
        self._seen = ReceivablesSummary.of(status)
        return self._seen

    def _history_is_long(self) -> bool:
        return self._checks >= CHECKS_BEFORE_CONTINUE or workflow.info().is_continue_as_new_suggested()

    async def _wait(self, input: InvoiceToCashInput, summary: ReceivablesSummary | None) -> None:
        """Until the next check: the poll interval, or sooner when a dunning stage starts, a webhook nudges
        or finance asks for a write-off."""
        timeout = timedelta(seconds=input.poll_interval_seconds)
        starts = dunning.next_start(summary, done=self._dunning_stage) if summary else None
        if starts is not None:
            timeout = min(timeout, max(starts - workflow.now(), timedelta(seconds=1)))
        try:
            await workflow.wait_condition(
                lambda: self._nudged or self._write_off is not None, timeout=timeout
            )
        except TimeoutError:
            pass

    async def _push(self, input: InvoiceToCashInput, summary: ReceivablesSummary) -> None:
        """Tell the PSA and the CRM when something changed; a push that fails for good is an exception,
        and is tried again at the next check (the money keeps being followed)."""
        if summary == self._summary:
            return
        failures: list[str] = []
        try:
            await workflow.execute_activity_method(
                PsaActivities.push_financials_to_psa,
                PushFinancialsToPsaInput(project_id=input.project_id, summary=summary),
                **VENDOR_CALL,
            )
        except ActivityError as failure:
            failures.append(f"PSA project {input.project_id}: {failure.cause or failure}")
        try:
            await workflow.execute_activity_method(
                CrmActivities.push_receivables_to_crm,
                PushReceivablesToCrmInput(
                    opportunity_id=input.opportunity_id, account_id=input.account_id, summary=summary
                ),
                **VENDOR_CALL,
            )
        except ActivityError as failure:
            failures.append(f"CRM opportunity {input.opportunity_id}: {failure.cause or failure}")
        if failures:
            await self._raise(
                input,
                ExceptionOwner.INTEGRATION_SUPPORT,
                f"invoice {input.invoice_number} ({summary.state}, {summary.amount_due} due) could not be "
                "recorded: " + "; ".join(failures),
                key="push",
            )
            return
        self._summary = summary

    async def _dun(
        self, input: InvoiceToCashInput, summary: ReceivablesSummary, stage: dunning.DunningStage
    ) -> None:
        task = dunning.dunning_task(
            stage,
            summary,
            erp=input.erp,
            account_id=input.account_id,
            owner_id=input.account_owner_id,
            today=workflow.now().date(),
        )
        skipped = tuple(n.number for n in dunning.STAGES if self._dunning_stage < n.number < stage.number)
        task_id: str | None = None
        try:
            task_id = (
                await workflow.execute_activity_method(
                    CrmActivities.create_crm_task, CreateCrmTaskInput(task=task), **VENDOR_CALL
                )
            ).task_id
        except ActivityError as failure:
            await self._raise(
                input,
                ExceptionOwner.INTEGRATION_SUPPORT,
                f"dunning reminder {stage.number} for invoice {input.invoice_number} could not be created "
                f"in the CRM: {failure.cause or failure}",
                key=f"dunning-{stage.number}-task",
            )
        self._dunning_stage = stage.number
        self._dunning_skipped = (*self._dunning_skipped, *skipped)
        final = stage.number == dunning.FINAL_STAGE
        self._set_stage(f"dunning_stage_{stage.number}", ExceptionOwner.FINANCE if final else None)
        await self._audit(
            input,
            f"dunning_stage_{stage.number}",
            {
                "task_key": task.external_key,
                "task_id": task_id,
                "owner_id": input.account_owner_id,
                "amount_due": str(summary.amount_due),
                "due_date": summary.due_date.isoformat() if summary.due_date else None,
                "skipped_stages": list(skipped),
            },
        )
        if final:
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                f"invoice {input.invoice_number}: {summary.amount_due} is {stage.days_overdue} days overdue "
                "after every reminder; collect it or write it off",
                key="dunning-final",
            )

    async def _write_off_now(
        self, input: InvoiceToCashInput, summary: ReceivablesSummary, request: WriteOffRequest
    ) -> InvoiceToCashResult | None:
        """Credit what is still due with finance's reason; None when the invoice is to be followed on."""
        if request.expected_due is not None and request.expected_due != summary.amount_due:
            # A payment or credit landed between the decision and this read: finance decided on another
            # amount, so nothing is credited until someone decides on this one.
            self._write_off = None
            await self._audit(
                input,
                "write_off_dropped",
                {
                    "actor": request.actor,
                    "expected_due": str(request.expected_due),
                    "amount_due": str(summary.amount_due),
                },
            )
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                f"write-off of invoice {input.invoice_number} requested by {request.actor} for "
                f"{request.expected_due} was not made: {summary.amount_due} is due now; write off again if "
                "it still stands",
                key="write-off",
            )
            return None
        self._set_stage("writing_off", ExceptionOwner.FINANCE)
        amount = summary.amount_due
        # A new key per request: an ERP that replays a stored reply must not replay an earlier refusal.
        self._write_off_attempts += 1
        try:
            await workflow.execute_activity_method(
                ErpActivities.write_off_invoice,
                WriteOffInvoiceInput(
                    erp=input.erp,
                    invoice_id=input.invoice_id,
                    amount=amount,
                    reason=f"{request.reason} (approved by {request.actor})",
                    idempotency_key=f"write-off:{input.erp}:{input.invoice_id}:{self._write_off_attempts}",
                ),
                **VENDOR_CALL,
            )
        except ActivityError as failure:
            after = await self._check(input) or summary
            settled = settlement(after)
            if settled.final:
                # Paid (or voided) while finance was deciding: the settlement wins.
                await self._audit(
                    input, "write_off_not_needed", {"actor": request.actor, "outcome": settled.outcome}
                )
                await self._push(input, after)
                return await self._finish(input, after, settled)
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                f"write-off of invoice {input.invoice_number} requested by {request.actor} failed: "
                f"{failure.cause or failure}",
                key="write-off",
            )
            self._write_off = None
            self._set_stage(
                f"dunning_stage_{self._dunning_stage}" if self._dunning_stage else "awaiting_payment"
            )
            return None
        # What the ERP shows after the credit (nothing due); if it cannot be read now, what we credited.
        after = await self._check(input) or summary.model_copy(
            update={
                "amount_due": Money.zero(amount.currency),
                "amount_credited": summary.amount_credited + amount,
            }
        )
        written_off = after.model_copy(update={"state": InvoiceState.WRITTEN_OFF})
        await self._audit(
            input,
            "invoice_written_off",
            {"actor": request.actor, "reason": request.reason, "amount": str(amount)},
        )
        await self._push(input, written_off)
        result = await self._finish(input, written_off, Settlement(outcome="written_off"))
        return result.model_copy(update={"written_off": amount, "write_off_reason": request.reason})

    async def _finish(
        self, input: InvoiceToCashInput, summary: ReceivablesSummary, settled: Settlement
    ) -> InvoiceToCashResult:
        outcome = settled.outcome
        self._overpaid = settled.overpaid
        if settled.overpaid is not None:
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                f"invoice {input.invoice_number} was overpaid by {settled.overpaid} "
                f"({summary.amount_paid} paid, {summary.amount_credited} credited on {summary.total}): "
                "refund the customer or allocate the excess to another invoice",
                key="overpaid",
            )
            self._set_stage("overpaid", ExceptionOwner.FINANCE)
        else:
            self._set_stage(outcome)
        if outcome != "written_off":
            await self._audit(
                input,
                f"invoice_{outcome}",
                {
                    "number": input.invoice_number,
                    "amount_paid": str(summary.amount_paid),
                    "amount_credited": str(summary.amount_credited),
                    "overpaid": str(settled.overpaid) if settled.overpaid else None,
                },
            )
        return InvoiceToCashResult(
            outcome=outcome,
            invoice_id=input.invoice_id,
            invoice_number=input.invoice_number,
            summary=summary,
            dunning_stage=self._dunning_stage,
            overpaid=settled.overpaid,
        )

    async def _raise(
        self, input: InvoiceToCashInput, owner: ExceptionOwner, reason: str, *, key: str
    ) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.erp}:{input.invoice_id}:{key}",
                process=PROCESS,
                owner=owner,
                reason=reason,
                record={
                    "erp": input.erp,
                    "invoice_id": input.invoice_id,
                    "invoice_number": input.invoice_number,
                    "project_id": input.project_id,
                    "account_id": input.account_id,
                },
            ),
            **LEDGER_CALL,
        )

    async def _audit(self, input: InvoiceToCashInput, action: str, detail: dict[str, object]) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(action=action, entity="invoice", key=f"{input.erp}:{input.invoice_id}", detail=detail),
            **LEDGER_CALL,
        )
