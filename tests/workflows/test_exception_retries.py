"""What "retry" means for a billing line (time skipping, real sandboxes and ledger): the fixed line goes on
the next billing run for its project and period, started only once the run that raised it has finished."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from canonical import Money
from devstack.story import previous_period, working_days
from ingress.exceptions_api import request_retry
from ledger.repository import get_exception, list_exceptions
from runs.exception_action import ExceptionActionResult
from runs.time_to_billing import BillNow, TimeToBillingResult
from sandboxes.kantata.seed import KantataSeeder, TimeLog
from workflows.exceptions import ExceptionAction
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from .billing_steps import as_seen
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, start_billing


async def test_retrying_a_rejected_line_waits_for_the_running_billing_run_then_bills_the_line_in_the_next(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    story = await prepared_story(ts_system)
    created = await project_from_a_won_deal(ts_system, story)
    period = previous_period(datetime.now(UTC).date())
    day = working_days(period, 1)[0]
    role = f"Data Scientist {uuid.uuid4().hex[:8]}"
    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        who = uuid.uuid4().hex[:8]
        regular = await kantata.consultant(f"Regular {who}", f"r{who}@northwind.example", "Consultant")
        newcomer = await kantata.consultant(f"Newcomer {who}", f"n{who}@northwind.example", role)
        await kantata.add_to_project(created.project_id, [regular, newcomer])
        rated = await kantata.log_time(created.project_id, [TimeLog(regular.user_id, day, 480)])
        unrated = await kantata.log_time(created.project_id, [TimeLog(newcomer.user_id, day, 480)])
        await kantata.submit_and_approve(created.project_id, [*rated, *unrated])

    first = await start_billing(ts_system, created.project_id, period=period)

    async def asks_finance() -> bool:
        return (await first.query(TimeToBilling.status)).stage == "awaiting_approval"

    await eventually(asks_finance, what="the first run to ask finance")
    with ts_system.database.session() as session:
        (item,) = [i for i in list_exceptions(session, process="time_to_billing") if role in i.reason]
    assert item.record["kind"] == "time_entry" and item.record["ids"] == unrated

    # Finance adds the missing rate and retries while the first run still waits for its approval.
    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        await kantata.rate_card(
            "GBP", {date(datetime.now(UTC).year - 1, 1, 1): {role: Money.of("120", "GBP")}}
        )
    started = await request_retry(
        ts_system.database, ts_system.client, ts_system.settings, exception_id=item.id, actor="finance.lead"
    )
    action = ts_system.client.get_workflow_handle(started.workflow_id, result_type=ExceptionActionResult)

    async def waits_for_the_run() -> bool:
        return (await action.query(ExceptionAction.status)).stage == "waiting_for_busy_run"

    await eventually(waits_for_the_run, what="the retry to wait for the running billing run")

    await first.execute_update(TimeToBilling.approve_invoice, await as_seen(first, "finance.lead"))
    billed_first: TimeToBillingResult = await first.result()
    assert billed_first.outcome == "posted" and billed_first.time_entries_billed == 1

    # The retry starts the next run; it would settle for five minutes first, so finance bills at once.
    async def following() -> bool:
        return (await action.query(ExceptionAction.status)).stage == "following"

    await eventually(following, what="the retry to start the next billing run")
    await ts_system.client.get_workflow_handle(first.id).signal(
        TimeToBilling.bill_now, BillNow(actor="finance.lead")
    )
    outcome = await action.result()
    assert outcome.outcome == "resolved" and outcome.retried_workflow_id == first.id
    assert outcome.retried_run_id not in (None, first.result_run_id)
    second = ts_system.client.get_workflow_handle(
        first.id, run_id=outcome.retried_run_id, result_type=TimeToBillingResult
    )
    billed_second: TimeToBillingResult = await second.result()
    assert billed_second.outcome == "posted" and billed_second.invoice is not None
    assert billed_second.time_entries_billed == 1 and billed_second.invoice.total == Money.of("960.00", "GBP")
    assert billed_second.invoice.total.amount == Decimal(8) * Decimal(120)
    with ts_system.database.session() as session:
        settled = get_exception(session, exception_id=item.id)
    assert settled is not None and settled.status == "resolved"
