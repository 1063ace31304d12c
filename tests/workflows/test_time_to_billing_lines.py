"""TimeToBilling line rules on real Temporal servers: validation by owner, dated rates, re-reading the PSA."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from temporalio.testing import WorkflowEnvironment

from canonical import Money, Period, ProjectStatus
from devstack.story import previous_period, working_days
from ledger.repository import get_tax_rate, upsert_tax_rates
from runs import search_attributes as sa
from runs.reference_sync import ReferenceSyncInput
from runs.time_to_billing import BillNow, TimeToBillingResult, WorkApproved
from sandboxes.kantata.seed import TimeLog
from workflows.reference_sync import ReferenceSync, ReferenceSyncResult
from workflows.time_to_billing import TimeToBilling

from ..support.system import System
from .billing_steps import (
    approve_when_asked,
    begin_billing,
    change_contract,
    deal_for,
    exceptions,
    kantata,
    log_approved,
    staff,
    unbilled_time,
    unstaffed,
    wait_for_stage,
    xero_invoices,
)
from .helpers import stamp

ONE_DAY = 480


async def test_invalid_lines_become_exceptions_owned_by_their_domain_and_the_valid_lines_are_billed(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    created = await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))
    project = created.project_id
    period = previous_period(datetime.now(UTC).date())
    first, second, third = working_days(period, 3)
    good = await staff(system, project, "Consultant")
    no_rate = await staff(system, project, f"Data Scientist {stamp()}")
    stranger = await unstaffed(system, "Consultant")
    async with kantata(system) as seeder:
        internal = seeder.records(
            await seeder.call(
                "POST",
                "/stories",
                body={
                    "story": {"workspace_id": int(project), "title": "Internal training", "billable": False}
                },
            )
        )[0]
    valid = await log_approved(
        system,
        project,
        [TimeLog(user_id=good.user_id, day=first, minutes=ONE_DAY), TimeLog(good.user_id, second, ONE_DAY)],
    )
    (unrated,) = await log_approved(system, project, [TimeLog(no_rate.user_id, first, ONE_DAY)])
    (outsider,) = await log_approved(system, project, [TimeLog(stranger.user_id, first, ONE_DAY)])
    (wrong_task,) = await log_approved(
        system, project, [TimeLog(good.user_id, third, ONE_DAY, story_id=str(internal["id"]), billable=True)]
    )

    handle = await begin_billing(system, project, period=period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None
    assert result.time_entries_billed == 2 and result.rejected_items == 3
    assert result.invoice.total == Money.of("1600.00", "GBP")
    owners = {(e.owner.value, e.record["rule"]): e.record["ids"] for e in exceptions(system)}
    assert owners == {
        ("finance", "no_rate"): [unrated],
        ("hr_ops", "unknown_resource"): [outsider],
        ("pmo", "task_not_billable"): [wrong_task],
    }
    assert all(e.workflow_id == handle.id for e in exceptions(system))
    assert sorted(await unbilled_time(system, project, period)) == sorted([unrated, outsider, wrong_task])
    assert not set(valid) & set(await unbilled_time(system, project, period))


async def test_a_line_fixed_after_its_exception_is_billed_in_the_next_run(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    created = await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))
    project = created.project_id
    period = previous_period(datetime.now(UTC).date())
    day = working_days(period, 1)[0]
    role = f"Data Scientist {stamp()}"
    good = await staff(system, project, "Consultant")
    newcomer = await staff(system, project, role)
    await log_approved(system, project, [TimeLog(good.user_id, day, ONE_DAY)])
    (unrated,) = await log_approved(system, project, [TimeLog(newcomer.user_id, day, ONE_DAY)])

    handle = await begin_billing(system, project, period=period)
    await approve_when_asked(handle)
    first: TimeToBillingResult = await handle.result()
    assert first.outcome == "posted" and first.time_entries_billed == 1 and first.rejected_items == 1
    (missing_rate,) = exceptions(system, owner="finance")
    assert role in missing_rate.reason and missing_rate.record["ids"] == [unrated]

    # Finance adds the missing rate; the next run for the period bills exactly that line.
    async with kantata(system) as seeder:
        await seeder.rate_card(
            "GBP", {date(datetime.now(UTC).year - 1, 1, 1): {role: Money.of("120", "GBP")}}
        )
    again = await begin_billing(system, project, period=period)
    second: TimeToBillingResult = await again.result()

    assert second.outcome == "posted" and second.invoice is not None
    assert second.time_entries_billed == 1 and second.rejected_items == 0
    assert second.invoice.total == Money.of("960.00", "GBP")
    assert first.invoice is not None and second.adjustment
    assert second.invoice.number != first.invoice.number
    assert await unbilled_time(system, project, period) == []


async def test_time_is_rated_by_the_rate_card_version_in_force_on_each_entry_date(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    created = await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))
    project = created.project_id
    role = f"Analyst {stamp()}"
    # March 2024 lies before every other test's work, so these set versions change no one else's rates.
    async with kantata(system) as seeder:
        await seeder.rate_card(
            "GBP",
            {
                date(2024, 3, 1): {role: Money.of("100", "GBP")},
                date(2024, 3, 16): {role: Money.of("120", "GBP")},
            },
        )
    analyst = await staff(system, project, role)
    await log_approved(
        system,
        project,
        [
            TimeLog(analyst.user_id, date(2024, 3, 15), ONE_DAY),
            TimeLog(analyst.user_id, date(2024, 3, 18), ONE_DAY),
        ],
    )

    handle = await begin_billing(system, project, period=Period(value="2024-03"))
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.invoice is not None and result.invoice.total == Money.of("1760.00", "GBP")
    (booked,) = await xero_invoices(system, _reference_of(result, project))
    assert sorted((line["UnitAmount"], line["Quantity"]) for line in booked["LineItems"]) == [
        (Decimal("100"), Decimal("8")),
        (Decimal("120"), Decimal("8")),
    ]


async def test_an_approval_event_never_decides_what_is_billed_the_psa_is_reread(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    created = await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))
    project = created.project_id
    period = previous_period(datetime.now(UTC).date())
    first, second = working_days(period, 2)
    person = await staff(system, project, "Consultant")
    (approved,) = await log_approved(system, project, [TimeLog(person.user_id, first, ONE_DAY)])
    async with kantata(system) as seeder:
        (pending,) = await seeder.log_time(project, [TimeLog(person.user_id, second, ONE_DAY)])

    handle = await begin_billing(system, project, period=period, settle_seconds=3600)
    await wait_for_stage(handle, "settling")
    # A (forged or stale) event claims the unapproved entry was approved: the run must not believe it.
    await handle.signal(TimeToBilling.work_approved, WorkApproved(event_ids=(f"approved:{pending}",)))
    # Work approved after the nudge is billed too, because billing reads Kantata, not the events.
    (late,) = await log_approved(system, project, [TimeLog(person.user_id, second, 240)])
    await handle.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.invoice is not None and result.time_entries_billed == 2
    assert result.invoice.total == Money.of("1200.00", "GBP")
    assert await unbilled_time(system, project, period) == []
    async with kantata(system) as seeder:
        entries = {
            str(e["id"]): e
            for e in await seeder.every("/time_entries", {"only": f"{approved},{pending},{late}"})
        }
    assert entries[approved]["is_invoiced"] and entries[late]["is_invoiced"]
    assert not entries[pending]["is_invoiced"] and not entries[pending]["approved"]


def _reference_of(result: TimeToBillingResult, project: str) -> str:
    assert result.idempotency_key is not None
    return f"PS-{project}-{result.period}-{result.idempotency_key[4:12]}"


async def _one_day_billed_under(system: System, **terms: object) -> tuple[str, TimeToBillingResult]:
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    if terms:
        change_contract(system, project, **terms)
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])
    return project, await (await begin_billing(system, project, period)).result()


async def test_time_rated_in_another_currency_than_the_contracts_is_a_finance_exception(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    _, result = await _one_day_billed_under(ts_system, currency="EUR")
    assert result.outcome == "nothing_to_bill" and result.rejected_items == 1
    (mismatch,) = exceptions(ts_system, owner="finance")
    assert mismatch.record["rule"] == "currency_mismatch" and "EUR" in mismatch.reason


async def test_a_tax_code_not_valid_for_the_entity_is_a_finance_exception(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    _, result = await _one_day_billed_under(ts_system, tax_code="VAT21")
    assert result.outcome == "nothing_to_bill" and result.rejected_items == 1
    (tax,) = exceptions(ts_system, owner="finance")
    assert tax.record["rule"] == "invalid_tax_code" and "'VAT21' is not valid for entity UK" in tax.reason


async def test_an_inactive_project_bills_nothing_and_is_an_exception_for_the_pmo(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    project = (await deal_for(ts_system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(ts_system, project, "Consultant")
    ids = await log_approved(
        ts_system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)]
    )
    await ts_system.connectors.psa.set_project_status(project, ProjectStatus.ON_HOLD, "customer dispute")

    handle = await begin_billing(ts_system, project, period)
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "nothing_to_bill" and result.reason == "project is on_hold"
    (inactive,) = exceptions(ts_system, owner="pmo")
    assert "not active" in inactive.reason
    assert (await handle.describe()).typed_search_attributes.get(sa.EXCEPTION_OWNER) == "pmo"
    assert await unbilled_time(ts_system, project, period) == ids


async def test_a_tax_code_archived_in_the_erp_since_the_reference_sync_is_a_finance_exception_before_posting(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    synced: ReferenceSyncResult = await system.client.execute_workflow(
        ReferenceSync.run,
        ReferenceSyncInput(entities=(system.settings.entity("UK"),), psa=system.settings.psa),
        id=f"reference-sync-{stamp()}",
        task_queue=system.task_queue,
    )
    assert synced.failures == ()
    with system.database.session() as session:
        output2 = get_tax_rate(session, system="xero", code="OUTPUT2")
        assert output2 is not None and output2.active
        # As the next sync would record a rate finance archived in Xero (the Xero sandbox is shared by the
        # session's tests, so the archive is made in this test's own ledger).
        upsert_tax_rates(session, system="xero", tax_rates=[output2.model_copy(update={"active": False})])

    _, result = await _one_day_billed_under(system)
    assert result.outcome == "nothing_to_bill" and result.rejected_items == 1
    (tax,) = exceptions(system, owner="finance")
    assert tax.record["rule"] == "tax_code_not_in_erp"
    assert "'OUTPUT2' is archived in xero" in tax.reason

    # Restored in Xero (and so in the ledger), the same code bills again: the line reaches finance.
    with system.database.session() as session:
        upsert_tax_rates(session, system="xero", tax_rates=[output2])
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])
    status = await wait_for_stage(await begin_billing(system, project, period), "awaiting_approval")
    assert status.total == Money.of("800.00", "GBP")
