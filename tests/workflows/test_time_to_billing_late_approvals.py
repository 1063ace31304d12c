"""TimeToBilling on real Temporal servers: work approved after a run began collecting is billed by a follow-up
run exactly once (a repeated feed event is no new work), and "bill now" bills the work to date mid-period
with the rest of the period billed by a later run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.billing_starter import StartBillingInput, StarterActivities
from canonical import Money, Period
from canonical.events import item_key
from devstack.story import previous_period, working_days
from ledger.repository import audit_trail, postings_for
from runs import starts
from runs.time_to_billing import (
    BillNow,
    TimeToBillingInput,
    TimeToBillingResult,
    workflow_id,
)
from sandboxes.kantata.seed import TimeLog

from ..support.system import System
from .billing_steps import (
    approve_when_asked,
    deal_for,
    kantata,
    log_approved,
    staff,
    unbilled_time,
    wait_for_stage,
)

ONE_DAY = 480
# InvoiceToCash follows each posted invoice; the time-skipping server need not poll the ERP every hour.
RARELY = 30 * 24 * 3600


def _input(system: System, project: str, period: Period) -> TimeToBillingInput:
    return TimeToBillingInput(
        project_id=project,
        period=period.value,
        psa="kantata",
        entities=tuple(system.settings.entities),
        settle_seconds=1,
        invoice_poll_interval_seconds=RARELY,
    )


async def _feed(
    system: System, project: str, period: Period, *event_ids: str, items: tuple[str, ...] = ()
) -> None:
    """What the PSA feed poller's billing starter does with approvals it read (and the items they name)."""
    await starts.start_billing(
        system.client,
        task_queue=system.task_queue,
        input=_input(system, project, period),
        event_ids=event_ids,
        item_ids=tuple(item_key("time", item) for item in items),
    )


def _run(system: System, project: str, period: Period) -> WorkflowHandle[Any, TimeToBillingResult]:
    return system.client.get_workflow_handle(
        workflow_id(project, period.value), result_type=TimeToBillingResult
    )


def _audited(system: System, project: str, period: Period, action: str) -> list[dict[str, Any]]:
    with system.database.session() as session:
        trail = audit_trail(session, key=workflow_id(project, period.value))
    return [entry.detail for entry in trail if entry.action == action]


async def test_work_approved_while_the_invoice_waits_for_finance_is_billed_by_a_follow_up_exactly_once(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    first_day, second_day = working_days(period, 2)
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, first_day, ONE_DAY)])
    await _feed(system, project, period, "evt-early")
    handle = _run(system, project, period)
    waiting = await wait_for_stage(handle, "awaiting_approval")
    assert waiting.total == Money.of("800.00", "GBP")

    # Approved after the run collected: its invoice cannot hold it. The feed repeats events, old and new.
    (late,) = await log_approved(system, project, [TimeLog(person.user_id, second_day, 240)])
    await _feed(system, project, period, "evt-late")
    await _feed(system, project, period, "evt-late", "evt-early")
    await _feed(system, project, period, "evt-early")
    await approve_when_asked(handle, "finance")
    result = await handle.result()

    # The follow-up run of the same period billed the late work, as the contract bills late work.
    assert result.outcome == "posted" and result.adjustment and result.time_entries_billed == 1
    assert result.invoice is not None and result.invoice.total == Money.of("400.00", "GBP")
    assert await unbilled_time(system, project, period) == []
    with system.database.session() as session:
        assert [p.period for p in postings_for(session, project_id=project)] == [period.value, period.value]
    (followed,) = _audited(system, project, period, "late_work_followed_up")
    assert followed["event_ids"] == ["evt-late"] and followed["unnamed"] == 0
    assert len(_audited(system, project, period, "invoice_posted")) == 2
    async with kantata(system) as seeder:
        (entry,) = await seeder.every("/time_entries", {"only": late, "include": "invoice"})
    assert entry["is_invoiced"]


async def play_late_events_for_invoiced_work(
    system: System,
) -> tuple[WorkflowHandle[Any, TimeToBillingResult], str, str, Period]:
    """Two approved days billed by one run, while the feed names them again in new events as the invoice waits
    for finance; returns the run, the id of the run that drew the invoice, the project and the period."""
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    first, second = await log_approved(
        system,
        project,
        [TimeLog(person.user_id, day, ONE_DAY) for day in working_days(period, 2)],
    )
    await _feed(system, project, period, "evt-1", items=(first,))
    handle = _run(system, project, period)
    waiting = await wait_for_stage(handle, "awaiting_approval")
    assert waiting.total == Money.of("1600.00", "GBP")
    first_run = (await handle.describe()).run_id

    # The poller read the rest of the feed later: new events, but for work this invoice already holds.
    await _feed(system, project, period, "evt-2", items=(second,))
    await _feed(system, project, period, "evt-3", "evt-4", items=(first, second))
    await approve_when_asked(handle, "finance")
    return handle, first_run, project, period


async def test_late_events_naming_only_work_on_the_invoice_start_no_follow_up(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    handle, first_run, project, period = await play_late_events_for_invoiced_work(system)
    result = await handle.result()

    assert result.outcome == "posted" and not result.adjustment and result.time_entries_billed == 2
    assert _audited(system, project, period, "late_work_followed_up") == []
    assert (await handle.describe()).run_id == first_run, "the run continued as new into a follow-up"
    with system.database.session() as session:
        assert len(postings_for(session, project_id=project)) == 1


@dataclass(frozen=True)
class _DayFed:
    """A project's first working day of last month, approved and fed to its billing run by item."""

    project: str
    period: Period
    user_id: str
    entry: str
    next_day: date
    handle: WorkflowHandle[Any, TimeToBillingResult]


async def _a_day_fed(system: System, event_id: str) -> _DayFed:
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    first_day, next_day = working_days(period, 2)
    person = await staff(system, project, "Consultant")
    (entry,) = await log_approved(system, project, [TimeLog(person.user_id, first_day, ONE_DAY)])
    await _feed(system, project, period, event_id, items=(entry,))
    return _DayFed(project, period, person.user_id, entry, next_day, _run(system, project, period))


async def play_late_internal_time(
    system: System,
) -> tuple[WorkflowHandle[Any, TimeToBillingResult], str, str, Period]:
    """A billed day, and internal time approved after collection whose event names it as the invoice waits
    for finance; returns the run, the id of the run that drew the invoice, the project and the period."""
    fed = await _a_day_fed(system, "evt-1")
    await wait_for_stage(fed.handle, "awaiting_approval")
    first_run = (await fed.handle.describe()).run_id

    # Internal time, approved like any other: its event names it, but it is never billed by anyone.
    (internal,) = await log_approved(
        system, fed.project, [TimeLog(fed.user_id, fed.next_day, 120, billable=False)]
    )
    await _feed(system, fed.project, fed.period, "evt-2", items=(fed.entry, internal))
    await approve_when_asked(fed.handle, "finance")
    return fed.handle, first_run, fed.project, fed.period


async def test_late_events_naming_non_billable_time_start_no_follow_up(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    handle, first_run, project, period = await play_late_internal_time(system)
    result = await handle.result()

    assert result.outcome == "posted" and result.time_entries_billed == 1
    assert _audited(system, project, period, "late_work_followed_up") == []
    assert (await handle.describe()).run_id == first_run, "the run continued as new into a follow-up"


async def test_a_late_event_naming_work_off_the_invoice_is_followed_up_with_that_work(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    fed = await _a_day_fed(system, "evt-early")
    project, period, handle = fed.project, fed.period, fed.handle
    await wait_for_stage(handle, "awaiting_approval")

    # One late event names the invoiced entry and one approved after collection.
    (late,) = await log_approved(system, project, [TimeLog(fed.user_id, fed.next_day, 240)])
    await _feed(system, project, period, "evt-late", items=(fed.entry, late))
    await approve_when_asked(handle, "finance")
    result = await handle.result()

    assert result.outcome == "posted" and result.adjustment and result.time_entries_billed == 1
    assert result.invoice is not None and result.invoice.total == Money.of("400.00", "GBP")
    (followed,) = _audited(system, project, period, "late_work_followed_up")
    assert followed["event_ids"] == ["evt-late"]
    assert await unbilled_time(system, project, period) == []


async def test_approvals_reaching_a_finished_run_start_a_new_one_only_for_work_still_owed(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    fed = await _a_day_fed(system, "evt-1")
    project, period, handle, billed = fed.project, fed.period, fed.handle, fed.entry
    await approve_when_asked(handle, "finance")
    await handle.result()
    finished = (await handle.describe()).run_id
    starter = StarterActivities(system.client, system.task_queue, system.connectors.psa)

    def nudge(event_id: str, *items: str) -> StartBillingInput:
        return StartBillingInput(
            **_input(system, project, period).model_dump(include={"project_id", "period", "psa", "entities"}),
            settle_seconds=1,
            invoice_poll_interval_seconds=RARELY,
            event_ids=(event_id,),
            item_ids=tuple(item_key("time", item) for item in items),
        )

    # The feed, read on after the run, names the billed day again: nothing is owed, no run starts.
    again = await starter.start_billing(nudge("evt-2", billed))
    assert not again.nudged and (await handle.describe()).run_id == finished

    # Then a day approved since: a new run bills it.
    (later,) = await log_approved(system, project, [TimeLog(fed.user_id, fed.next_day, 240)])
    fresh = await starter.start_billing(nudge("evt-3", billed, later))
    assert fresh.nudged and fresh.run_id != finished
    result = await system.client.get_workflow_handle(
        handle.id, run_id=fresh.run_id, result_type=TimeToBillingResult
    ).result()
    assert result.outcome == "posted" and result.time_entries_billed == 1
    assert await unbilled_time(system, project, period) == []


async def test_a_repeated_feed_event_after_collection_is_no_new_work_and_starts_no_follow_up(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])
    await _feed(system, project, period, "evt-1", "evt-2")
    handle = _run(system, project, period)
    await wait_for_stage(handle, "awaiting_approval")

    # The poller crashed before saving its cursor and delivers the same events again.
    await _feed(system, project, period, "evt-2", "evt-1")
    await approve_when_asked(handle, "finance")
    result = await handle.result()

    assert result.outcome == "posted" and not result.adjustment and result.time_entries_billed == 1
    assert _audited(system, project, period, "late_work_followed_up") == []
    with system.database.session() as session:
        assert len(postings_for(session, project_id=project)) == 1


async def test_bill_now_mid_period_bills_the_work_to_date_at_once_and_a_later_run_the_rest_of_the_month(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    # The month the runs live in: the shared time-skipping server's clock runs ahead of the wall clock.
    period = Period.of((await ts_env.get_current_time()).date())
    closes_at = datetime.combine(period.last_day + timedelta(days=1), time(0), tzinfo=UTC)
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, period.first_day, ONE_DAY)])

    await starts.start_billing_now(
        system.client,
        task_queue=system.task_queue,
        input=_input(system, project, period),
        request=BillNow(actor="Priya PMO <u-priya>"),
    )
    handle = _run(system, project, period)
    waiting = await wait_for_stage(handle, "awaiting_approval")
    assert waiting.total == Money.of("800.00", "GBP")
    assert await ts_env.get_current_time() < closes_at
    first_run = (await handle.describe()).run_id
    (asked,) = _audited(system, project, period, "bill_now")
    assert asked["actor"] == "Priya PMO <u-priya>" and asked["period_closed"] is False

    # More work of the month, approved while finance looks at the first invoice.
    await log_approved(system, project, [TimeLog(person.user_id, period.first_day, 240)])
    await _feed(system, project, period, "evt-later")
    await approve_when_asked(handle, "finance")

    # A follow-up run of the same period waits for the month to close before billing the rest (finance
    # may bill it now too, which also spares this test skipping to the month's end).
    follow_up = await wait_for_stage(handle, "waiting_for_period_close")
    assert follow_up.invoice_number is None
    assert (await handle.describe()).run_id != first_run
    assert await ts_env.get_current_time() < closes_at
    await starts.start_billing_now(
        system.client,
        task_queue=system.task_queue,
        input=_input(system, project, period),
        request=BillNow(actor="Fiona Finance <u-fiona>"),
    )
    result = await handle.result()
    assert result.outcome == "posted" and result.time_entries_billed == 1
    assert result.invoice is not None and result.invoice.total == Money.of("400.00", "GBP")
    assert await unbilled_time(system, project, period) == []
    with system.database.session() as session:
        assert [p.period for p in postings_for(session, project_id=project)] == [period.value, period.value]


async def test_bill_now_arriving_after_collection_is_billed_at_once_by_the_follow_up(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    # The month the runs live in: the shared time-skipping server's clock runs ahead of the wall clock.
    period = Period.of((await ts_env.get_current_time()).date())
    closes_at = datetime.combine(period.last_day + timedelta(days=1), time(0), tzinfo=UTC)
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, period.first_day, ONE_DAY)])
    await starts.start_billing_now(
        system.client,
        task_queue=system.task_queue,
        input=_input(system, project, period),
        request=BillNow(actor="Fiona Finance <u-fiona>"),
    )
    handle = _run(system, project, period)
    await wait_for_stage(handle, "awaiting_approval")

    await log_approved(system, project, [TimeLog(person.user_id, period.first_day, 240)])
    await starts.start_billing_now(
        system.client,
        task_queue=system.task_queue,
        input=_input(system, project, period),
        request=BillNow(actor="Priya PMO <u-priya>", milestone_id="m-1"),
    )
    await approve_when_asked(handle, "finance")
    result = await handle.result()

    # The follow-up billed at once, without waiting for the month to close.
    assert result.outcome == "posted" and result.adjustment and result.time_entries_billed == 1
    assert await ts_env.get_current_time() < closes_at
    assert await unbilled_time(system, project, period) == []
    asked = _audited(system, project, period, "bill_now")
    assert {(a["actor"], a["milestone_id"], a["follow_up"]) for a in asked} == {
        ("Fiona Finance <u-fiona>", None, False),
        ("Priya PMO <u-priya>", "m-1", True),
    }
