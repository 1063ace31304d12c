"""TimeToBilling: one project's approved work in one period becomes one invoice, posted exactly once.

The run re-reads the work from the PSA (events only nudge it), validates and rates every line by the
contract (time and materials with an optional not-to-exceed cap, fixed fee by milestone, monthly retainer
with drawdown), parks invalid lines as exceptions without blocking the rest, waits for finance where the
rules say so, posts to the ERP of the project's legal entity under an idempotency key derived from the
project, period and sorted entry ids, and only then marks the entries billed. A permanent ERP refusal (or
a failure to mark entries billed) becomes an exception for the team that can fix it, and the run waits for
`retry`. Long periods continue as new, carrying cursors and rated work.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pssync.activities.billing_starter import StartBillingInput, StarterActivities
    from pssync.activities.erp import ErpActivities, PostInvoiceInput
    from pssync.activities.ledger import (
        AuditInput,
        BillingHistoryInput,
        LedgerActivities,
        LoadContractInput,
        MarkPostingBilledInput,
        RaiseExceptionInput,
        RaiseExceptionsInput,
    )
    from pssync.activities.psa import (
        FetchUnbilledMilestonesInput,
        FetchWorkBatchInput,
        GetProjectBillingSetupInput,
        MarkBilledInput,
        PsaActivities,
    )
    from pssync.canonical import (
        BillingModel,
        ExceptionOwner,
        Invoice,
        LegalEntity,
        Money,
        Period,
        PostedInvoice,
        ProjectContract,
        ProjectStatus,
    )
    from pssync.domain.billing_policy import (
        BillingHistory,
        allowance_for,
        approval_reason,
        deferral_period,
        group_rejections,
        invoice_reference,
        late_entry_decision,
        late_periods,
        next_period,
        retainer_fee,
    )
    from pssync.domain.billing_validation import BillingContext
    from pssync.domain.business_days import add_business_days
    from pssync.domain.idempotency import invoice_key
    from pssync.domain.rating import (
        Allowance,
        RatedWork,
        invoice_lines,
        rate_expenses,
        rate_milestones,
        rate_time,
    )
    from pssync.workflows import search_attributes as sa
    from pssync.workflows.invoice_to_cash import InvoiceToCash, InvoiceToCashInput
    from pssync.workflows.invoice_to_cash import workflow_id as invoice_to_cash_id
    from pssync.workflows.options import LEDGER_CALL, PAGED_CALL, POSTING_CALL, VENDOR_CALL
    from pssync.workflows.time_to_billing_models import (
        ApprovalDecision,
        ApprovalRecorded,
        BillNow,
        Collection,
        RetryRequest,
        TimeToBillingInput,
        TimeToBillingResult,
        TimeToBillingStatus,
        WorkApproved,
    )

PROCESS = "time_to_billing"
APPROVAL_STAGES = ("awaiting_approval", "approval_reminded", "approval_escalated")


def workflow_id(project_id: str, period: str) -> str:
    return f"time-to-billing:{project_id}:{period}"


@workflow.defn
class TimeToBilling:
    def __init__(self) -> None:
        self._stage = "starting"
        self._project_id = ""
        self._period = ""
        self._approvals_seen = 0
        self._bill_now = False
        self._approved_by: str | None = None
        self._rejected_because: str | None = None
        self._approval_required = False
        self._approval_reason: str | None = None
        self._reminded = False
        self._escalated = False
        self._rated = RatedWork()
        self._total: Money | None = None
        self._invoice_number: str | None = None
        self._posting_problem: str | None = None
        self._retry_requested = False
        self._adjustment = False
        self._currency: str | None = None

    # --- messages -------------------------------------------------------------------------------------------

    @workflow.signal
    def work_approved(self, event: WorkApproved) -> None:
        self._approvals_seen += 1

    @workflow.signal
    def bill_now(self, request: BillNow) -> None:
        self._bill_now = True

    @workflow.signal
    def approve(self, decision: ApprovalDecision) -> None:
        self._approved_by = decision.approver

    @workflow.signal
    def reject(self, decision: ApprovalDecision) -> None:
        self._rejected_because = f"{decision.approver}: {decision.reason or 'no reason given'}"

    @workflow.update
    def approve_invoice(self, decision: ApprovalDecision) -> ApprovalRecorded:
        """Like the `approve` signal, but the caller learns at once whether an invoice was waiting."""
        self._approved_by = decision.approver
        return ApprovalRecorded(decision="approved", stage=self._stage)

    @approve_invoice.validator
    def _approvable(self, decision: ApprovalDecision) -> None:
        self._require_waiting_for_approval()

    @workflow.update
    def reject_invoice(self, decision: ApprovalDecision) -> ApprovalRecorded:
        self._rejected_because = f"{decision.approver}: {decision.reason}"
        return ApprovalRecorded(decision="rejected", stage=self._stage)

    @reject_invoice.validator
    def _rejectable(self, decision: ApprovalDecision) -> None:
        self._require_waiting_for_approval()
        if not (decision.reason and decision.reason.strip()):
            raise ValueError("a rejection needs a reason: it travels back with the entries")

    def _require_waiting_for_approval(self) -> None:
        if self._stage not in APPROVAL_STAGES or self._approved_by or self._rejected_because:
            raise ValueError(f"no invoice is waiting for approval in this run (stage {self._stage})")

    @workflow.signal
    def retry(self, request: RetryRequest) -> None:
        self._retry_requested = True

    @workflow.query
    def status(self) -> TimeToBillingStatus:
        drawdown = None
        if self._currency and self._rated.covered_hours:
            drawdown = Money(amount=self._rated.covered_value, currency=self._currency)
        return TimeToBillingStatus(
            stage=self._stage,
            project_id=self._project_id,
            period=self._period,
            approvals_seen=self._approvals_seen,
            entries_rated=self._rated.entry_count,
            rejected_items=self._rated.rejected_count,
            total=self._total,
            approval_required=self._approval_required,
            approval_reminded=self._reminded,
            approval_escalated=self._escalated,
            invoice_number=self._invoice_number,
            approval_reason=self._approval_reason,
            posting_problem=self._posting_problem,
            adjustment=self._adjustment,
            held_back_items=self._rated.held_back_count,
            retainer_drawdown=drawdown,
        )

    def _set_stage(self, stage: str, owner: ExceptionOwner | None = None) -> None:
        self._stage = stage
        workflow.upsert_search_attributes(
            [
                sa.SYNC_STAGE.value_set(stage),
                sa.EXCEPTION_OWNER.value_set(owner.value) if owner else sa.EXCEPTION_OWNER.value_unset(),
            ]
        )

    # --- the run --------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, input: TimeToBillingInput) -> TimeToBillingResult:
        self._project_id, self._period = input.project_id, input.period
        workflow.upsert_search_attributes(
            [
                sa.PROJECT_ID.value_set(input.project_id),
                sa.BILLING_PERIOD.value_set(input.period),
            ]
        )
        carried = input.carried
        if carried is None:
            await self._wait_for_period_to_settle(input)
        contract = await self._load_contract(input)
        self._currency = contract.contract.currency
        entity = _entity(input.entities, contract.contract.legal_entity)
        booked = await workflow.execute_local_activity_method(
            LedgerActivities.billing_history,
            BillingHistoryInput(project_id=input.project_id, erp=entity.erp),
            **LEDGER_CALL,
        )
        history = booked.history
        if carried is not None and carried.posted is not None:
            # Continued while marking billed: the invoice exists; only the marks are left to make.
            self._rated, self._adjustment = carried.rated, carried.adjustment
            return await self._finish(input, contract, entity, carried)

        setup = await workflow.execute_activity_method(
            PsaActivities.get_project_billing_setup,
            GetProjectBillingSetupInput(project_id=input.project_id),
            **VENDOR_CALL,
        )
        if setup.project.status != ProjectStatus.ACTIVE:
            await self._raise(
                input,
                ExceptionOwner.PMO,
                f"project is {setup.project.status}, not active: its approved work is not billed",
                key="project-inactive",
                record={"project_id": input.project_id, "period": input.period},
            )
            self._set_stage("blocked", ExceptionOwner.PMO)
            return self._result(input, "nothing_to_bill", reason=f"project is {setup.project.status}")

        unfinished = history.unfinished(input.period)
        if unfinished:
            # An earlier run posted an invoice and was stopped before marking its entries billed: billing
            # again now could put those entries on a second invoice.
            numbers = ", ".join(p.number or p.idempotency_key for p in unfinished)
            await self._raise(
                input,
                ExceptionOwner.INTEGRATION_SUPPORT,
                f"invoice {numbers} was posted for {input.period} but its entries were never marked billed; "
                "mark them (or reset the run that posted it) before billing this period again",
                key="unfinished-posting",
                record={"project_id": input.project_id, "period": input.period, "invoices": numbers},
            )
            self._set_stage("blocked", ExceptionOwner.INTEGRATION_SUPPORT)
            return self._result(input, "nothing_to_bill", reason=f"invoice {numbers} not yet marked billed")
        late = late_entry_decision(contract=contract.contract, history=history, period=input.period)
        if late == "defer":
            return await self._defer(input, history)
        self._adjustment = late == "adjustment"
        if (
            contract.contract.billing_model == BillingModel.RETAINER
            and contract.contract.retainer_amount is None
        ):
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                "the contract is a retainer without a monthly retainer amount: nothing can be billed",
                key="retainer-amount-missing",
                record={"project_id": input.project_id, "period": input.period},
            )
            self._set_stage("blocked", ExceptionOwner.FINANCE)
            return self._result(input, "nothing_to_bill", reason="retainer amount missing")

        context = BillingContext(
            project=setup.project,
            resources=tuple(setup.resources),
            rate_card=setup.rate_card,
            contract=contract.contract,
            entity=entity,
            erp_tax_codes=booked.erp_tax_codes,
        )
        periods = (
            input.period,
            *late_periods(contract=contract.contract, history=history, period=input.period),
        )
        collection = await self._collect(
            input, context, allowance_for(contract.contract, history), carried or Collection(periods=periods)
        )
        rated = self._rated = collection.rated
        await self._report_unbillable(input, contract, rated)

        lines = invoice_lines(
            rated,
            context=context,
            period=input.period,
            retainer_fee=retainer_fee(contract.contract, history, input.period),
        )
        if not lines:
            self._set_stage("nothing_to_bill")
            return self._result(input, "nothing_to_bill")

        today = workflow.now().date()
        key = invoice_key(
            project_id=input.project_id,
            period=input.period,
            entry_ids=[
                *rated.time_entry_ids,
                *(f"expense:{i}" for i in rated.expense_ids),
                *(f"milestone:{i}" for i in rated.milestone_ids),
            ],
        )
        invoice = Invoice(
            legal_entity=entity.code,
            customer_id=contract.erp_customer_id,
            customer_name=contract.customer_name,
            project_id=input.project_id,
            period=input.period,
            currency=contract.contract.currency,
            issue_date=today,
            due_date=today + timedelta(days=contract.contract.payment_terms_days),
            reference=invoice_reference(
                project_id=input.project_id, period=input.period, key=key, adjustment=self._adjustment
            ),
            lines=lines,
        )
        self._total = invoice.total

        why = approval_reason(total=invoice.total, entity=entity, history=history)
        if why is not None:
            rejection = await self._await_finance(input, invoice, entity, why)
            if rejection is not None:
                await self._release(input, invoice, key, rated, rejection)
                return self._result(
                    input, "rejected", key=key, reason=rejection, rejected_items=rated.rejected_count
                )

        posted = await self._post(input, contract, invoice, key)
        finished = collection.model_copy(
            update={"posted": posted, "idempotency_key": key, "adjustment": self._adjustment}
        )
        return await self._finish(input, contract, entity, finished)

    # --- waiting for the period -----------------------------------------------------------------------------

    async def _wait_for_period_to_settle(self, input: TimeToBillingInput) -> None:
        """Bill a period once it has closed and approvals have stopped arriving (or when told to)."""
        self._set_stage("waiting_for_period_close")
        period = Period(value=input.period)
        closes_at = datetime.combine(period.last_day + timedelta(days=1), time(0), tzinfo=UTC)
        wait = closes_at - workflow.now()
        if wait > timedelta(0):
            try:
                await workflow.wait_condition(lambda: self._bill_now, timeout=wait)
            except TimeoutError:
                pass
        self._set_stage("settling")
        while not self._bill_now:
            seen = self._approvals_seen
            try:
                await workflow.wait_condition(
                    # Awaited at once, so the closure never outlives this iteration's `seen`.
                    lambda: self._bill_now or self._approvals_seen != seen,  # noqa: B023
                    timeout=timedelta(seconds=input.settle_seconds),
                )
            except TimeoutError:
                return

    async def _load_contract(self, input: TimeToBillingInput) -> ProjectContract:
        contract = (
            await workflow.execute_local_activity_method(
                LedgerActivities.load_project_contract,
                LoadContractInput(psa=input.psa, project_id=input.project_id),
                **LEDGER_CALL,
            )
        ).contract
        if contract is None:
            await self._raise(
                input,
                ExceptionOwner.INTEGRATION_SUPPORT,
                "no contract recorded for this project: was it created by OpportunityToProject?",
                key="no-contract",
                record={"project_id": input.project_id},
            )
            self._set_stage("blocked", ExceptionOwner.INTEGRATION_SUPPORT)
            raise ApplicationError(
                f"project {input.project_id} has no contract in the ledger",
                type="NoContract",
                non_retryable=True,
            )
        workflow.upsert_search_attributes(
            [
                sa.LEGAL_ENTITY.value_set(contract.contract.legal_entity),
                sa.CUSTOMER_ID.value_set(contract.erp_customer_id),
                sa.OPPORTUNITY_ID.value_set(contract.opportunity_id),
            ]
        )
        return contract

    async def _defer(self, input: TimeToBillingInput, history: BillingHistory) -> TimeToBillingResult:
        """The period is invoiced and late work goes to the next run: hand it on, never drop it."""
        target = deferral_period(period=input.period, today=workflow.now().date())
        await self._start_billing(input, target)
        await self._audit(
            "late_work_deferred",
            input,
            {"to_period": target, "invoiced_as": [p.number for p in history.for_period(input.period)]},
        )
        self._set_stage("deferred")
        return self._result(input, "deferred", deferred_to=target)

    async def _start_billing(self, input: TimeToBillingInput, period: str) -> None:
        await workflow.execute_activity_method(
            StarterActivities.start_billing,
            StartBillingInput(
                project_id=input.project_id,
                period=period,
                psa=input.psa,
                entities=input.entities,
                settle_seconds=input.settle_seconds,
                invoice_poll_interval_seconds=input.invoice_poll_interval_seconds,
                event_ids=(),
            ),
            **VENDOR_CALL,
        )

    # --- collecting and rating ------------------------------------------------------------------------------

    async def _collect(
        self,
        input: TimeToBillingInput,
        context: BillingContext,
        allowance: Allowance | None,
        state: Collection,
    ) -> Collection:
        """Page through approved work, rating each batch as it arrives: the source decides, never the feed."""
        self._set_stage("collecting")
        self._rated = state.rated
        # A fixed fee's milestones come first: they are the fee, and the cap is counted in order.
        if context.contract.billing_model == BillingModel.FIXED_FEE and not state.milestones_done:
            milestones = await workflow.execute_activity_method(
                PsaActivities.fetch_unbilled_milestones,
                FetchUnbilledMilestonesInput(project_id=input.project_id),
                **VENDOR_CALL,
            )
            state = state.model_copy(
                update={
                    "milestones_done": True,
                    "rated": rate_milestones(
                        state.rated,
                        milestones.milestones,
                        context=context,
                        period_end=Period(value=input.period).last_day,
                        allowance=allowance,
                    ),
                }
            )
            self._rated = state.rated
        # A fixed fee never bills time, so its time is not even read.
        bills_time = context.contract.billing_model != BillingModel.FIXED_FEE
        while state.period_index < len(state.periods):
            period = state.periods[state.period_index]
            while bills_time and not state.time_done:
                batch = await workflow.execute_activity_method(
                    PsaActivities.fetch_time_batch,
                    FetchWorkBatchInput(
                        project_id=input.project_id,
                        period=period,
                        cursor=state.time_cursor,
                        max_items=input.batch_size,
                    ),
                    **PAGED_CALL,
                )
                state = state.model_copy(
                    update={
                        "time_cursor": batch.next_cursor,
                        "time_done": batch.next_cursor is None,
                        "rated": rate_time(state.rated, batch.entries, context=context, allowance=allowance),
                    }
                )
                self._rated = state.rated
                self._continue_if_history_is_long(input, state)
            while not state.expense_done:
                expenses = await workflow.execute_activity_method(
                    PsaActivities.fetch_expense_batch,
                    FetchWorkBatchInput(
                        project_id=input.project_id,
                        period=period,
                        cursor=state.expense_cursor,
                        max_items=input.batch_size,
                    ),
                    **PAGED_CALL,
                )
                state = state.model_copy(
                    update={
                        "expense_cursor": expenses.next_cursor,
                        "expense_done": expenses.next_cursor is None,
                        "rated": rate_expenses(
                            state.rated, expenses.expenses, context=context, allowance=allowance
                        ),
                    }
                )
                self._rated = state.rated
                self._continue_if_history_is_long(input, state)
            state = state.model_copy(
                update={
                    "period_index": state.period_index + 1,
                    "time_cursor": None,
                    "time_done": False,
                    "expense_cursor": None,
                    "expense_done": False,
                }
            )
        return state

    def _continue_if_history_is_long(self, input: TimeToBillingInput, state: Collection) -> None:
        info = workflow.info()
        if (
            info.get_current_history_length() > input.history_events_before_continue
            or info.is_continue_as_new_suggested()
        ):
            workflow.continue_as_new(input.model_copy(update={"carried": state}))

    async def _report_unbillable(
        self, input: TimeToBillingInput, contract: ProjectContract, rated: RatedWork
    ) -> None:
        """Invalid lines and work beyond a cap become exceptions for the team that can fix them."""
        items = [
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.project_id}:{input.period}:{group.rule}:{group.kind}",
                process=PROCESS,
                owner=group.owner,
                reason=group.reason,
                record={
                    "project_id": input.project_id,
                    "period": input.period,
                    "psa": input.psa,
                    "kind": group.kind,
                    "rule": group.rule,
                    "count": group.count,
                    "ids": list(group.item_ids),
                },
            )
            for group in group_rejections(rated.rejected, rated.rejection_counts)
        ]
        if rated.held_back_count:
            cap = contract.contract.not_to_exceed
            held = Money(amount=rated.held_back_value, currency=contract.contract.currency).rounded()
            items.append(
                RaiseExceptionInput(
                    dedupe_key=f"{PROCESS}:{input.project_id}:{input.period}:over-cap",
                    process=PROCESS,
                    owner=ExceptionOwner.FINANCE,
                    reason=f"not-to-exceed cap of {cap} reached: {rated.held_back_count} items worth "
                    f"{held} are held back unbilled; raise the cap or write the overage off",
                    record={
                        "project_id": input.project_id,
                        "period": input.period,
                        "psa": input.psa,
                        "rule": "over_cap",
                        "cap": str(cap),
                        "overage": str(held),
                        "count": rated.held_back_count,
                        "ids": list(rated.held_back_ids),
                    },
                )
            )
        if items:
            await workflow.execute_local_activity_method(
                LedgerActivities.raise_exceptions, RaiseExceptionsInput(items=items), **LEDGER_CALL
            )

    # --- approval -------------------------------------------------------------------------------------------

    async def _await_finance(
        self, input: TimeToBillingInput, invoice: Invoice, entity: LegalEntity, why: str
    ) -> str | None:
        """Wait for finance: remind after 2 business days, escalate after 5. Returns a rejection or None."""
        self._approval_required, self._approval_reason = True, why
        self._set_stage("awaiting_approval", ExceptionOwner.FINANCE)
        await self._audit(
            "approval_requested",
            input,
            {"total": str(invoice.total), "threshold": str(entity.approval_threshold), "why": why},
        )
        asked_at = workflow.now()
        deadlines = (
            ("reminder", add_business_days(asked_at, 2)),
            ("escalation", add_business_days(asked_at, 5)),
        )

        def decided() -> bool:
            return self._approved_by is not None or self._rejected_because is not None

        for step, deadline in deadlines:
            try:
                await workflow.wait_condition(
                    decided, timeout=max(deadline - workflow.now(), timedelta(seconds=1))
                )
                break
            except TimeoutError:
                if step == "reminder":
                    self._reminded = True
                    self._set_stage("approval_reminded", ExceptionOwner.FINANCE)
                    await self._audit("approval_reminder", input, {"total": str(invoice.total)})
                else:
                    self._escalated = True
                    await self._raise(
                        input,
                        ExceptionOwner.FINANCE,
                        f"invoice of {invoice.total} for project {input.project_id} ({input.period}) "
                        f"has waited 5 business days for approval ({why}): escalated to the finance lead",
                        key="approval-escalated",
                        record={"reference": invoice.reference, "total": str(invoice.total)},
                    )
                    self._set_stage("approval_escalated", ExceptionOwner.FINANCE)
        await workflow.wait_condition(decided)
        if self._rejected_because is not None:
            return self._rejected_because
        await self._audit(
            "invoice_approved", input, {"approver": self._approved_by, "total": str(invoice.total)}
        )
        return None

    async def _release(
        self, input: TimeToBillingInput, invoice: Invoice, key: str, rated: RatedWork, reason: str
    ) -> None:
        """Nothing was marked, so the entries are simply unbilled again; the reason goes where people look."""
        self._set_stage("rejected")
        released = {
            "time_entries": len(rated.time_entry_ids),
            "expenses": len(rated.expense_ids),
            "milestones": len(rated.milestone_ids),
        }
        await self._audit(
            "invoice_rejected",
            input,
            {
                "reason": reason,
                "total": str(invoice.total),
                "reference": invoice.reference,
                "released": released,
            },
        )
        await self._raise(
            input,
            ExceptionOwner.PMO,
            f"finance rejected invoice {invoice.reference} ({invoice.total}): {reason}. Its entries are "
            "unbilled again; correct them and retry to bill them in a new run",
            key=f"invoice-rejected:{key[4:12]}",
            record={
                "project_id": input.project_id,
                "period": input.period,
                "psa": input.psa,
                "reference": invoice.reference,
                "reason": reason,
                "released": released,
                "time_entry_ids": list(rated.time_entry_ids[:200]),
            },
        )

    # --- posting and marking billed -------------------------------------------------------------------------

    async def _post(
        self, input: TimeToBillingInput, contract: ProjectContract, invoice: Invoice, key: str
    ) -> PostedInvoice:
        """Post once; a refusal retrying cannot fix waits for a person and a `retry`, entries unbilled."""
        while True:
            self._set_stage("posting")
            try:
                posted = (
                    await workflow.execute_activity_method(
                        ErpActivities.post_invoice,
                        PostInvoiceInput(invoice=invoice, idempotency_key=key),
                        **POSTING_CALL,
                    )
                ).posted
            except ActivityError as failure:
                owner, problem = _posting_problem(failure)
                self._posting_problem = problem
                await self._wait_for_fix(
                    input,
                    owner,
                    f"{contract.erp} refused invoice {invoice.reference} ({invoice.total}): {problem}",
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
                    },
                )
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

    # --- ledger helpers -------------------------------------------------------------------------------------

    def _result(self, input: TimeToBillingInput, outcome: str, **fields: Any) -> TimeToBillingResult:
        key = fields.pop("key", None)
        return TimeToBillingResult(
            outcome=outcome,
            project_id=input.project_id,
            period=input.period,
            idempotency_key=key,
            adjustment=self._adjustment,
            held_back_items=self._rated.held_back_count,
            **{"rejected_items": self._rated.rejected_count, **fields},
        )

    async def _raise(
        self,
        input: TimeToBillingInput,
        owner: ExceptionOwner,
        reason: str,
        *,
        key: str,
        record: dict[str, object],
    ) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exception,
            RaiseExceptionInput(
                dedupe_key=f"{PROCESS}:{input.project_id}:{input.period}:{key}",
                process=PROCESS,
                owner=owner,
                reason=reason,
                record=record,
            ),
            **LEDGER_CALL,
        )

    async def _audit(self, action: str, input: TimeToBillingInput, detail: dict[str, object]) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.audit,
            AuditInput(
                action=action,
                entity="billing_run",
                key=workflow_id(input.project_id, input.period),
                detail=detail,
            ),
            **LEDGER_CALL,
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
        if cause.type in ("Rejected", "NotFound")
        else ExceptionOwner.INTEGRATION_SUPPORT
    )
    return owner, message


def _entity(entities: tuple[LegalEntity, ...], code: str) -> LegalEntity:
    for entity in entities:
        if entity.code == code:
            return entity
    raise ApplicationError(f"legal entity {code} is not configured", type="UnknownEntity", non_retryable=True)
