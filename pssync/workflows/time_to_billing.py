"""TimeToBilling: one project's approved work in one period becomes one invoice, posted exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from pydantic import BaseModel, ConfigDict
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pssync.activities.erp import ErpActivities, PostInvoiceInput
    from pssync.activities.ledger import (
        AuditInput,
        LedgerActivities,
        LoadContractInput,
        MarkPostingBilledInput,
        RaiseExceptionInput,
        RaiseExceptionsInput,
    )
    from pssync.activities.psa import (
        FetchWorkBatchInput,
        GetProjectBillingSetupInput,
        MarkBilledInput,
        PsaActivities,
    )
    from pssync.canonical import (
        ExceptionOwner,
        Invoice,
        LegalEntity,
        Money,
        Period,
        PostedInvoice,
        ProjectContract,
        ProjectStatus,
        RateCard,
    )
    from pssync.domain.business_days import add_business_days
    from pssync.domain.idempotency import invoice_key
    from pssync.domain.rating import RatedWork, RejectedItem, invoice_lines, rate_expenses, rate_time
    from pssync.workflows import search_attributes as sa
    from pssync.workflows.invoice_to_cash import InvoiceToCash, InvoiceToCashInput
    from pssync.workflows.invoice_to_cash import workflow_id as invoice_to_cash_id
    from pssync.workflows.options import LEDGER_CALL, PAGED_CALL, VENDOR_CALL

PROCESS = "time_to_billing"
MARK_BILLED_CHUNK = 500
# Keep each run's history well below Temporal's limits; the cursor carries over to the next run.
HISTORY_EVENTS_BEFORE_CONTINUE = 5000


def workflow_id(project_id: str, period: str) -> str:
    return f"time-to-billing:{project_id}:{period}"


class Collection(BaseModel):
    """Where collection stood when a run continued as new."""

    model_config = ConfigDict(frozen=True)

    time_cursor: str | None = None
    time_done: bool = False
    expense_cursor: str | None = None
    expense_done: bool = False
    rated: RatedWork = RatedWork()


class TimeToBillingInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    project_id: str
    period: str
    psa: str
    entities: tuple[LegalEntity, ...]
    # Bill once no new approvals have arrived for this long after the period closed.
    settle_seconds: int = 300
    batch_size: int = 1000
    invoice_poll_interval_seconds: int = 3600
    carried: Collection | None = None


class WorkApproved(BaseModel):
    model_config = ConfigDict(frozen=True)
    event_ids: tuple[str, ...] = ()


class BillNow(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str


class ApprovalDecision(BaseModel):
    model_config = ConfigDict(frozen=True)
    approver: str
    reason: str | None = None


class TimeToBillingStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str
    project_id: str
    period: str
    approvals_seen: int
    entries_rated: int
    rejected_items: int
    total: Money | None = None
    approval_required: bool = False
    approval_reminded: bool = False
    approval_escalated: bool = False
    invoice_number: str | None = None


class TimeToBillingResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: str  # posted | nothing_to_bill | rejected
    project_id: str
    period: str
    idempotency_key: str | None = None
    invoice: PostedInvoice | None = None
    time_entries_billed: int = 0
    expenses_billed: int = 0
    rejected_items: int = 0
    reason: str | None = None
    invoice_to_cash_workflow_id: str | None = None


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
        self._reminded = False
        self._escalated = False
        self._rated = RatedWork()
        self._total: Money | None = None
        self._invoice_number: str | None = None

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

    @workflow.query
    def status(self) -> TimeToBillingStatus:
        return TimeToBillingStatus(
            stage=self._stage,
            project_id=self._project_id,
            period=self._period,
            approvals_seen=self._approvals_seen,
            entries_rated=len(self._rated.time_entry_ids) + len(self._rated.expense_ids),
            rejected_items=len(self._rated.rejected),
            total=self._total,
            approval_required=self._approval_required,
            approval_reminded=self._reminded,
            approval_escalated=self._escalated,
            invoice_number=self._invoice_number,
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
    async def run(self, input: TimeToBillingInput) -> TimeToBillingResult:
        self._project_id, self._period = input.project_id, input.period
        workflow.upsert_search_attributes(
            [
                sa.PROJECT_ID.value_set(input.project_id),
                sa.BILLING_PERIOD.value_set(input.period),
            ]
        )
        if input.carried is None:
            await self._wait_for_period_to_settle(input)
        contract = await self._load_contract(input)
        setup = await workflow.execute_activity_method(
            PsaActivities.get_project_billing_setup,
            GetProjectBillingSetupInput(project_id=input.project_id),
            **VENDOR_CALL,
        )
        if setup.project.status != ProjectStatus.ACTIVE:
            await self._raise(
                input,
                ExceptionOwner.PMO,
                f"project is {setup.project.status}, not active",
                key="project-inactive",
                record={"project_id": input.project_id},
            )
            self._set_stage("blocked", ExceptionOwner.PMO)
            return TimeToBillingResult(
                outcome="nothing_to_bill",
                project_id=input.project_id,
                period=input.period,
                reason=f"project is {setup.project.status}",
            )

        collection = await self._collect(input, contract, setup.rate_card)
        rated = collection.rated
        self._rated = rated
        if rated.rejected:
            await self._raise_rejected(input, rated.rejected)
        entity = _entity(input.entities, contract.contract.legal_entity)
        lines = invoice_lines(rated, contract=contract.contract, rounding=entity.line_rounding)
        if not lines:
            self._set_stage("nothing_to_bill")
            return TimeToBillingResult(
                outcome="nothing_to_bill",
                project_id=input.project_id,
                period=input.period,
                rejected_items=len(rated.rejected),
            )

        today = workflow.now().date()
        key = invoice_key(
            project_id=input.project_id,
            period=input.period,
            entry_ids=[*rated.time_entry_ids, *(f"expense:{i}" for i in rated.expense_ids)],
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
            reference=f"PS-{input.project_id}-{input.period}-{key[4:12]}",
            lines=lines,
        )
        self._total = invoice.total

        if invoice.total > entity.approval_threshold:
            decision = await self._await_finance(input, invoice, entity)
            if decision is not None:
                self._set_stage("rejected")
                await self._audit(
                    "invoice_rejected", input, {"reason": decision, "total": str(invoice.total)}
                )
                return TimeToBillingResult(
                    outcome="rejected",
                    project_id=input.project_id,
                    period=input.period,
                    idempotency_key=key,
                    reason=decision,
                    rejected_items=len(rated.rejected),
                )

        self._set_stage("posting")
        posted = (
            await workflow.execute_activity_method(
                ErpActivities.post_invoice,
                PostInvoiceInput(invoice=invoice, idempotency_key=key),
                **VENDOR_CALL,
            )
        ).posted
        self._invoice_number = posted.number

        # Only after the ERP confirmed: a crash before this point re-posts under the same key and
        # gets the same invoice back, so entries can never be billed on two invoices.
        self._set_stage("marking_billed")
        await self._mark_billed(rated, posted.number)
        await workflow.execute_local_activity_method(
            LedgerActivities.mark_posting_billed,
            MarkPostingBilledInput(idempotency_key=key),
            **LEDGER_CALL,
        )
        await self._audit(
            "invoice_posted",
            input,
            {
                "erp": posted.erp,
                "invoice_id": posted.invoice_id,
                "number": posted.number,
                "total": str(posted.total),
                "idempotency_key": key,
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
        self._set_stage("done")
        return TimeToBillingResult(
            outcome="posted",
            project_id=input.project_id,
            period=input.period,
            idempotency_key=key,
            invoice=posted,
            time_entries_billed=len(rated.time_entry_ids),
            expenses_billed=len(rated.expense_ids),
            rejected_items=len(rated.rejected),
            invoice_to_cash_workflow_id=cash_id,
        )

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

    async def _collect(
        self, input: TimeToBillingInput, contract: ProjectContract, rate_card: RateCard
    ) -> Collection:
        """Page through approved work, rating each batch as it arrives: the source decides, never the feed."""
        self._set_stage("collecting")
        state = input.carried or Collection()
        while not state.time_done:
            batch = await workflow.execute_activity_method(
                PsaActivities.fetch_time_batch,
                FetchWorkBatchInput(
                    project_id=input.project_id,
                    period=input.period,
                    cursor=state.time_cursor,
                    max_items=input.batch_size,
                ),
                **PAGED_CALL,
            )
            state = Collection(
                time_cursor=batch.next_cursor,
                time_done=batch.next_cursor is None,
                rated=state.rated.merge(
                    rate_time(batch.entries, rate_card=rate_card, contract=contract.contract)
                ),
            )
            self._rated = state.rated
            self._continue_if_history_is_long(input, state)
        while not state.expense_done:
            expenses = await workflow.execute_activity_method(
                PsaActivities.fetch_expense_batch,
                FetchWorkBatchInput(
                    project_id=input.project_id,
                    period=input.period,
                    cursor=state.expense_cursor,
                    max_items=input.batch_size,
                ),
                **PAGED_CALL,
            )
            state = state.model_copy(
                update={
                    "expense_cursor": expenses.next_cursor,
                    "expense_done": expenses.next_cursor is None,
                    "rated": state.rated.merge(rate_expenses(expenses.expenses, contract=contract.contract)),
                }
            )
            self._rated = state.rated
            self._continue_if_history_is_long(input, state)
        return state

    def _continue_if_history_is_long(self, input: TimeToBillingInput, state: Collection) -> None:
        info = workflow.info()
        if (
            info.get_current_history_length() > HISTORY_EVENTS_BEFORE_CONTINUE
            or info.is_continue_as_new_suggested()
        ):
            workflow.continue_as_new(input.model_copy(update={"carried": state}))

    async def _await_finance(
        self, input: TimeToBillingInput, invoice: Invoice, entity: LegalEntity
    ) -> str | None:
        """Wait for finance: remind after 2 business days, escalate after 5. Returns a rejection or None."""
        self._approval_required = True
        self._set_stage("awaiting_approval", ExceptionOwner.FINANCE)
        await self._audit(
            "approval_requested",
            input,
            {"total": str(invoice.total), "threshold": str(entity.approval_threshold)},
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
                        "has waited "
                        "5 business days for approval: escalated to the finance lead",
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

    async def _mark_billed(self, rated: RatedWork, invoice_number: str) -> None:
        times, expenses = list(rated.time_entry_ids), list(rated.expense_ids)
        for start in range(0, max(len(times), len(expenses)), MARK_BILLED_CHUNK):
            await workflow.execute_activity_method(
                PsaActivities.mark_billed,
                MarkBilledInput(
                    time_entry_ids=times[start : start + MARK_BILLED_CHUNK],
                    expense_ids=expenses[start : start + MARK_BILLED_CHUNK],
                    invoice_number=invoice_number,
                ),
                **VENDOR_CALL,
            )

    async def _raise_rejected(self, input: TimeToBillingInput, rejected: tuple[RejectedItem, ...]) -> None:
        await workflow.execute_local_activity_method(
            LedgerActivities.raise_exceptions,
            RaiseExceptionsInput(
                items=[
                    RaiseExceptionInput(
                        dedupe_key=f"{PROCESS}:{item.kind}:{item.item_id}",
                        process=PROCESS,
                        owner=item.owner,
                        reason=item.reason,
                        record={
                            "kind": item.kind,
                            "id": item.item_id,
                            "project_id": input.project_id,
                            "period": input.period,
                        },
                    )
                    for item in rejected
                ]
            ),
            **LEDGER_CALL,
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


def _entity(entities: tuple[LegalEntity, ...], code: str) -> LegalEntity:
    for entity in entities:
        if entity.code == code:
            return entity
    raise ApplicationError(f"legal entity {code} is not configured", type="UnknownEntity", non_retryable=True)
