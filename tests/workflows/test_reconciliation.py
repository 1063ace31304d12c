"""Reconciliation on real Temporal servers, sandboxes and the ledger: a billed period agrees across PSA, ERP
and ledger; every difference is an exception with the lines that differ, resolved once it is gone."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from canonical import Period
from devstack.story import EU_DEAL, UK_DEAL, DealPlan, Story, previous_period
from devstack.tryton import TrytonServer
from ingress.exceptions_api import close_item, request_retry
from ledger.repository import get_exception, list_exceptions
from runs.exception_action import ExceptionActionResult
from runs.reconciliation import ReconciliationInput
from runs.time_to_billing import TimeToBillingResult
from sandboxes.xero.seed import XeroFinanceUser
from workflows.reconciliation import Reconciliation, ReconciliationResult
from workflows.time_to_billing import TimeToBilling

from ..support.system import Sandboxes, System, running_system
from .billing_steps import as_seen
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, start_billing


@pytest.fixture
async def tryton_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    # Real time: Tryton refuses invoices dated in its future, which a session's skipped time would make them.
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


async def reconcile(system: System, period: Period, entity: str = "UK") -> ReconciliationResult:
    result: ReconciliationResult = await system.client.execute_workflow(
        Reconciliation.run,
        ReconciliationInput(
            period=period.value, entities=(system.settings.entity(entity),), psa=system.settings.psa
        ),
        id=f"reconciliation-test-{uuid.uuid4().hex[:10]}",
        task_queue=system.task_queue,
    )
    return result


async def bill(system: System, project_id: str, period: Period) -> TimeToBillingResult:
    handle = await start_billing(system, project_id, period=period)

    async def asks_finance() -> bool:
        return (await handle.query(TimeToBilling.status)).stage == "awaiting_approval"

    await eventually(asks_finance, what="the billing run to ask finance")
    await handle.execute_update(TimeToBilling.approve_invoice, await as_seen(handle, "finance.lead"))
    result: TimeToBillingResult = await handle.result()
    assert result.outcome == "posted" and result.invoice is not None
    return result


async def billed_project(
    system: System, story: Story, period: Period, plan: DealPlan = UK_DEAL
) -> tuple[str, TimeToBillingResult]:
    created = await project_from_a_won_deal(system, story, plan)
    await story.log_and_approve_time(created.project_id, period, days=2)
    return created.project_id, await bill(system, created.project_id, period)


async def test_a_billed_period_agrees_across_psa_erp_and_ledger_by_count_and_amount(
    ts_system: System,
) -> None:
    story = await prepared_story(ts_system)
    period = previous_period(datetime.now(UTC).date())
    project_id, billed = await billed_project(ts_system, story, period)
    assert billed.invoice is not None

    result = await reconcile(ts_system, period)

    (row,) = [row for row in result.rows if row.project_id == project_id]
    assert row.status == "ok" and result.differences == ()
    # Two consultants, two days: four approved entries, all on the one invoice.
    assert (row.psa_count, row.psa_billed, row.erp_invoices, row.ledger_postings) == (4, 4, 1, 1)
    assert row.psa_amount == row.erp_amount == row.ledger_amount == billed.invoice.total.amount
    assert row.unbilled_count == 0


async def test_the_eu_entity_reconciles_against_the_invoices_tryton_holds(tryton_system: System) -> None:
    story = await prepared_story(tryton_system)
    period = previous_period(datetime.now(UTC).date())
    project_id, billed = await billed_project(tryton_system, story, period, EU_DEAL)
    assert billed.invoice is not None and billed.invoice.erp == "tryton"

    result = await reconcile(tryton_system, period, "EU")

    (row,) = [row for row in result.rows if row.project_id == project_id]
    assert row.status == "ok" and row.currency == "EUR"
    assert (row.psa_billed, row.erp_invoices, row.ledger_postings) == (4, 1, 1)
    assert row.psa_amount == row.erp_amount == row.ledger_amount == billed.invoice.total.amount


async def test_approved_work_left_unbilled_past_the_grace_period_is_a_finance_exception_naming_the_entries(
    ts_system: System,
) -> None:
    story = await prepared_story(ts_system)
    created = await project_from_a_won_deal(ts_system, story)
    # Two months back: the period closed long ago, so unbilled work there is no longer work in flight.
    old = Period.of(previous_period(datetime.now(UTC).date()).first_day - timedelta(days=1))
    await story.log_and_approve_time(created.project_id, old, days=1)

    result = await reconcile(ts_system, old)

    (difference,) = [d for d in result.differences if d.project_id == created.project_id]
    assert difference.kind == "approved_work_not_invoiced"
    assert difference.lines[0].psa_count == 2 and len(difference.entry_ids) == 2
    with ts_system.database.session() as session:
        (item,) = list_exceptions(session, process="reconciliation")
    assert item.owner == "finance" and item.status == "open"
    assert item.record["project_id"] == created.project_id and item.record["period"] == old.value
    assert item.record["lines"][0]["psa_count"] == 2 and len(item.record["entry_ids"]) == 2

    # Finance bills the forgotten period, then retries the exception: the check runs again and finds it gone.
    await bill(ts_system, created.project_id, old)
    started = await request_retry(
        ts_system.database,
        ts_system.client,
        ts_system.settings,
        exception_id=item.id,
        actor="finance.lead",
        note="billed the forgotten month",
    )
    action = ts_system.client.get_workflow_handle(started.workflow_id, result_type=ExceptionActionResult)
    outcome = await action.result()
    assert outcome.outcome == "resolved" and outcome.retried_workflow_id is not None
    assert outcome.retried_workflow_id == f"reconciliation:{old.value}:UK:{started.workflow_id}"
    with ts_system.database.session() as session:
        settled = get_exception(session, exception_id=item.id)
    assert settled is not None and settled.status == "resolved"


async def test_a_difference_a_person_skipped_stays_skipped_when_the_check_runs_again(
    ts_system: System,
) -> None:
    story = await prepared_story(ts_system)
    created = await project_from_a_won_deal(ts_system, story)
    old = Period.of(previous_period(datetime.now(UTC).date()).first_day - timedelta(days=1))
    await story.log_and_approve_time(created.project_id, old, days=1)
    await reconcile(ts_system, old)
    with ts_system.database.session() as session:
        (item,) = list_exceptions(session, process="reconciliation")
    await close_item(
        ts_system.database, exception_id=item.id, action="skip", actor="finance.lead", note="written off"
    )

    again = await reconcile(ts_system, old)

    assert [d.kind for d in again.differences] == ["approved_work_not_invoiced"]
    with ts_system.database.session() as session:
        still = get_exception(session, exception_id=item.id)
    assert still is not None and still.status == "skipped" and still.attempts == 1


async def test_a_posted_invoice_voided_in_the_erp_is_a_difference_for_finance_with_its_line(
    ts_system: System,
) -> None:
    story = await prepared_story(ts_system)
    period = previous_period(datetime.now(UTC).date())
    project_id, billed = await billed_project(ts_system, story, period)
    assert billed.invoice is not None
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        await finance.void_invoice(billed.invoice.invoice_id)
    finally:
        await finance.aclose()

    result = await reconcile(ts_system, period)

    (difference,) = [d for d in result.differences if d.project_id == project_id]
    assert difference.kind == "posted_invoice_voided" and difference.owner == "finance"
    (line,) = difference.lines
    assert line.invoice_number == billed.invoice.number and line.erp_state == "voided"
    assert line.ledger_amount == billed.invoice.total.amount and line.psa_count == 4
    (row,) = [row for row in result.rows if row.project_id == project_id]
    assert row.status == "differs" and row.erp_invoices == 0 and row.ledger_postings == 1
