"""What every part of a TimeToBilling run shares: its state, its stage and its ledger calls.

The concern modules hold mixins over this class, so they read and write one workflow's fields; the
workflow class itself (`workflows.time_to_billing.TimeToBilling`) combines them.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.billing_starter import StartBillingInput, StarterActivities
    from activities.ledger import AuditInput, LedgerActivities, RaiseExceptionInput
    from canonical import ExceptionOwner, Money
    from domain.rating import RatedWork
    from runs import search_attributes as sa
    from runs.time_to_billing import (
        ApprovalRecorded,
        Collection,
        PendingApproval,
        TimeToBillingInput,
        TimeToBillingResult,
        workflow_id,
    )
    from workflows.options import LEDGER_CALL, VENDOR_CALL

PROCESS = "time_to_billing"


class BillingRun:
    def __init__(self) -> None:
        self._stage = "starting"
        self._project_id = ""
        self._period = ""
        self._approvals_seen = 0
        self._bill_now = False
        self._approved_by: str | None = None
        self._rejected_because: str | None = None
        # The invoice finance is asked about, and the one decision taken on it: who, what, on which version.
        self._pending: PendingApproval | None = None
        self._decided: ApprovalRecorded | None = None
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

    def _set_stage(self, stage: str, owner: ExceptionOwner | None = None) -> None:
        self._stage = stage
        workflow.upsert_search_attributes(
            [
                sa.SYNC_STAGE.value_set(stage),
                sa.EXCEPTION_OWNER.value_set(owner.value) if owner else sa.EXCEPTION_OWNER.value_unset(),
            ]
        )

    def _continue_if_history_is_long(self, input: TimeToBillingInput, state: Collection) -> None:
        info = workflow.info()
        if (
            info.get_current_history_length() > input.history_events_before_continue
            or info.is_continue_as_new_suggested()
        ):
            workflow.continue_as_new(input.model_copy(update={"carried": state}))

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
