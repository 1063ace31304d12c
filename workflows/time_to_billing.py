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

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ledger import BillingHistoryInput, LedgerActivities, LoadContractInput
    from canonical import (
        BillingModel,
        ExceptionOwner,
        LegalEntity,
        Money,
        Period,
        ProjectContract,
        ProjectStatus,
    )
    from canonical.contract_versions import ContractVersion, version_in_force
    from domain.billing_policy import allowance_for, approval_reason, late_entry_decision, retainer_fee
    from domain.billing_validation import BillingContext
    from domain.rating import invoice_lines, retainer_account_problem
    from runs import search_attributes as sa
    from runs.time_to_billing import (
        BillNow,
        Collection,
        TimeToBillingInput,
        TimeToBillingResult,
        TimeToBillingStatus,
        WorkApproved,
    )
    from workflows.options import LEDGER_CALL

from workflows.billing.approval import APPROVAL_STAGES, Approval
from workflows.billing.collection import Collecting
from workflows.billing.late_work import LateWork
from workflows.billing.posting import Posting
from workflows.billing.rating import Rating
from workflows.billing.run_state import PROCESS
from workflows.billing.setup import read_billing_setup

__all__ = ["APPROVAL_STAGES", "PROCESS", "TimeToBilling"]


@workflow.defn
class TimeToBilling(Collecting, Rating, Approval, Posting, LateWork):
    """One run per project and period; each concern lives in its mixin under `workflows.billing`."""

    # --- messages -------------------------------------------------------------------------------------------

    @workflow.signal
    def work_approved(self, event: WorkApproved) -> None:
        self._approvals_seen += 1
        self._note_approval(event)

    @workflow.signal
    def bill_now(self, request: BillNow) -> None:
        self._bill_now = True
        self._note_bill_now(request)

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
        self._resume(input)
        if carried is None:
            await self._wait_for_period_to_settle(input)
            await self._record_bill_now(input)
        contract, versions = await self._load_contract(input)
        self._currency = contract.contract.currency
        entity = _entity(input.entities, contract.contract.legal_entity)
        booked = await workflow.execute_local_activity_method(
            LedgerActivities.billing_history,
            BillingHistoryInput(project_id=input.project_id, erp=entity.erp, legal_entity=entity.code),
            **LEDGER_CALL,
        )
        history = booked.history
        if carried is not None and carried.posted is not None:
            # Continued while marking billed: the invoice exists; only the marks are left to make.
            self._rated, self._adjustment = carried.rated, carried.adjustment
            done = await self._finish(input, contract, entity, carried)
            await self._follow_up_late_work(input, self._invoiced_items())
            return done

        setup = await read_billing_setup(input.project_id)
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
            accounts=booked.accounts,
            service_code=contract.service_code,
            dimensions=contract.erp_project.dimensions if contract.erp_project else (),
            contract_versions=versions,
        )
        fee_problem = retainer_account_problem(context)
        if fee_problem is not None:
            await self._raise(
                input,
                ExceptionOwner.FINANCE,
                f"the retainer fee cannot be booked, so nothing of {input.period} is billed: "
                f"{fee_problem.reason}",
                key="retainer-account",
                record={
                    "project_id": input.project_id,
                    "period": input.period,
                    "rule": fee_problem.rule,
                },
            )
            self._set_stage("blocked", ExceptionOwner.FINANCE)
            return self._result(input, "nothing_to_bill", reason="retainer account not mapped")
        periods = self._periods_to_collect(input, contract, history)
        self._begin_collecting()
        allowance = allowance_for(contract.contract, history)
        collection = await self._collect(input, context, allowance, carried or Collection(periods=periods))
        rated = self._rated = collection.rated
        await self._report_unbillable(input, contract, rated, allowance)

        lines = invoice_lines(
            rated,
            context=context,
            period=input.period,
            retainer_fee=retainer_fee(contract.contract, history, input.period),
        )
        if not lines:
            self._set_stage("nothing_to_bill")
            await self._follow_up_late_work(input)
            return self._result(input, "nothing_to_bill")

        invoice, key = self._draft_invoice(input, contract, entity, rated, lines)

        why = approval_reason(total=invoice.total, entity=entity, history=history)
        if why is not None:
            rejection = await self._await_finance(input, invoice, entity, why, key)
            if rejection is not None:
                await self._release(input, invoice, key, rated, rejection)
                return self._result(
                    input, "rejected", key=key, reason=rejection, rejected_items=rated.rejected_count
                )

        posted = await self._post(input, contract, invoice, key)
        finished = collection.model_copy(
            update={"posted": posted, "idempotency_key": key, "adjustment": self._adjustment}
        )
        done = await self._finish(input, contract, entity, finished)
        # Posted and marked: work that arrived too late for this invoice is billed by a follow-up.
        await self._follow_up_late_work(input, self._invoiced_items())
        return done

    # --- the contract ---------------------------------------------------------------------------------------

    async def _load_contract(
        self, input: TimeToBillingInput
    ) -> tuple[ProjectContract, tuple[ContractVersion, ...]]:
        """The contract the period is billed under, and every version when it was amended.

        An amended contract bills the period under the version in force on its last day: the cap, the
        billing model, tax and payment terms are the period's; the one term that follows each item's own
        date is a milestone's charge (BillingContext.billing_schedule_on). A not-to-exceed is a total over
        the project's life, so a cap changed mid-period applies to all of the period's work. Rates are the
        PSA's dated rate card's, which already rates each entry on its own date.
        """
        loaded = await workflow.execute_local_activity_method(
            LedgerActivities.load_project_contract,
            LoadContractInput(psa=input.psa, project_id=input.project_id),
            **LEDGER_CALL,
        )
        in_force = version_in_force(loaded.versions, Period(value=input.period).last_day)
        contract = in_force.contract if in_force is not None else loaded.contract
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
        return contract, loaded.versions


def _entity(entities: tuple[LegalEntity, ...], code: str) -> LegalEntity:
    for entity in entities:
        if entity.code == code:
            return entity
    raise ApplicationError(f"legal entity {code} is not configured", type="UnknownEntity", non_retryable=True)
