"""Collecting a period's approved work: waiting for the period to settle, then paging through the PSA.

Each batch is rated as it arrives, so a run that continues as new carries rated work and cursors, never raw
entries.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.psa import FetchUnbilledMilestonesInput, FetchWorkBatchInput, PsaActivities
    from canonical import BillingModel, Period
    from domain.billing_validation import BillingContext
    from domain.rating import Allowance, rate_expenses, rate_milestones, rate_time
    from runs.time_to_billing import Collection, TimeToBillingInput
    from workflows.options import PAGED_CALL, VENDOR_CALL

from workflows.billing.run_state import BillingRun


class Collecting(BillingRun):
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
