"""What rated work becomes: exceptions for what cannot be billed, and the invoice for what can."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.ledger import LedgerActivities, RaiseExceptionInput, RaiseExceptionsInput
    from canonical import ExceptionOwner, Invoice, InvoiceLine, LegalEntity, Money, ProjectContract
    from domain.billing_policy import group_rejections, invoice_reference
    from domain.idempotency import invoice_key
    from domain.rating import Allowance, RatedWork
    from runs.time_to_billing import TimeToBillingInput
    from workflows.options import LEDGER_CALL

from workflows.billing.run_state import PROCESS, BillingRun


class Rating(BillingRun):
    async def _report_unbillable(
        self,
        input: TimeToBillingInput,
        contract: ProjectContract,
        rated: RatedWork,
        allowance: Allowance | None = None,
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
            currency = contract.contract.currency
            held = Money(amount=rated.held_back_value, currency=currency).rounded()
            # By how much the work exceeds the cap: what this run counted against what was left of it, plus
            # what it held back. Items are held whole, so this is less than what is held back.
            left = allowance.limit if allowance is not None and allowance.kind == "cap" else None
            over = (
                Money(amount=rated.counted + rated.held_back_value - left.amount, currency=currency).rounded()
                if left is not None
                else held
            )
            items.append(
                RaiseExceptionInput(
                    dedupe_key=f"{PROCESS}:{input.project_id}:{input.period}:over-cap",
                    process=PROCESS,
                    # The project manager owns the budget conversation with the client; finance follows.
                    owner=ExceptionOwner.PMO,
                    reason=f"not-to-exceed cap of {cap} reached: the approved work is {over} over it; "
                    f"{rated.held_back_count} items worth {held} are held back unbilled. Agree a change "
                    "to the cap with the client (raise the deal's not-to-exceed amount in the CRM) or write "
                    "the overage off",
                    record={
                        "project_id": input.project_id,
                        "period": input.period,
                        "psa": input.psa,
                        "rule": "over_cap",
                        "cap": str(cap),
                        "cap_left": None if left is None else str(left),
                        "over_by": str(over),
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

    def _draft_invoice(
        self,
        input: TimeToBillingInput,
        contract: ProjectContract,
        entity: LegalEntity,
        rated: RatedWork,
        lines: tuple[InvoiceLine, ...],
    ) -> tuple[Invoice, str]:
        """The invoice and its idempotency key: the same work always yields the same key."""
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
        return invoice, key
