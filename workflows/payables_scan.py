"""PayablesScan: start the Payables run of every supplier owed expenses that are on no bill yet.

Run on demand or by a schedule; each supplier's run is signalled-with-start by its business key, so a scan
repeated while runs are going (or after they finished) never makes a second run or a second bill.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.payables_starter import PayablesStarterActivities, StartPayablesRunsInput
    from canonical import Period
    from runs.payables import PayablesScanInput, PayablesScanResult
    from workflows.options import PAGED_CALL


@workflow.defn
class PayablesScan:
    @workflow.run
    async def run(self, input: PayablesScanInput) -> PayablesScanResult:
        if input.period is not None:
            periods: tuple[str, ...] = (input.period,)
        else:
            today = workflow.now().date()
            previous = Period.of(today.replace(day=1) - timedelta(days=1))
            periods = (previous.value, Period.of(today).value)
        started: list[str] = []
        for period in periods:
            result = await workflow.execute_activity_method(
                PayablesStarterActivities.start_payables_runs,
                StartPayablesRunsInput(
                    psa=input.psa, period=period, poll_interval_seconds=input.poll_interval_seconds
                ),
                **PAGED_CALL,
            )
            started.extend(result.workflow_ids)
        return PayablesScanResult(periods=periods, started=tuple(started))
