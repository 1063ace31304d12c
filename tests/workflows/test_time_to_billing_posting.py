"""TimeToBilling posting on real Temporal servers: exactly once across a worker crash, ERP refusals that
wait for a person and `retry`, and late work (adjustment invoice or next run): never lost or billed twice."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from canonical import Money, Period
from config import default_entities
from connectors.tryton.connector import TrytonConnector
from devstack.story import EU_DEAL, previous_period, working_days
from devstack.tryton import ACCOUNT_VAT, TrytonServer
from ledger.repository import postings_for
from ledger.vocab import PostingState
from runs import search_attributes as sa
from runs.time_to_billing import BillNow, RetryRequest, TimeToBillingResult, workflow_id
from sandboxes.faults import FaultConfig
from sandboxes.kantata.seed import TimeLog
from sandboxes.xero.seed import XeroFinanceUser
from workflows.time_to_billing import TimeToBilling

from ..support.system import Sandboxes, System, running_system, set_faults
from .billing_steps import (
    approve_when_asked,
    begin_billing,
    change_contract,
    contract_of,
    deal_for,
    exceptions,
    kantata,
    log_approved,
    staff,
    unbilled_time,
    wait_for_stage,
    xero_invoices,
)
from .helpers import eventually, scheduled_activities

ONE_DAY = 480


async def test_a_crash_between_posting_and_marking_billed_recovers_without_a_second_invoice(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> None:
    queue = f"pssync-test-{uuid.uuid4().hex[:10]}"
    period = previous_period(datetime.now(UTC).date())
    async with running_system(dev_env.client, tmp_path, sandboxes, task_queue=queue) as system:
        project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
        person = await staff(system, project, "Consultant")
        ids = await log_approved(
            system, project, [TimeLog(person.user_id, day, ONE_DAY) for day in working_days(period, 2)]
        )
        # Kantata refuses every billed mark: the ERP confirms the invoice, marking billed keeps failing.
        await set_faults(
            sandboxes.kantata.url, FaultConfig(server_error_rate=1.0, path_prefixes=("/api/v1/invoices",))
        )
        handle = await begin_billing(system, project, period)
        await approve_when_asked(handle)
        await wait_for_stage(handle, "marking_billed")

        async def mark_failed_twice() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(p.activity_type.name == "mark_billed" and p.attempt >= 2 for p in pending)

        await eventually(mark_failed_twice, what="marking billed to fail and retry")
        with system.database.session() as session:
            (posting,) = postings_for(session, project_id=project)
        assert posting.state == PostingState.POSTED
        assert sorted(await unbilled_time(system, project, period)) == sorted(ids)
    # The worker is gone (and Kantata recovers); a new worker on the same queue picks the run up.

    async with running_system(dev_env.client, tmp_path, sandboxes, task_queue=queue) as system:
        result: TimeToBillingResult = await handle.result()

        assert result.outcome == "posted" and result.invoice is not None
        assert result.invoice.number == posting.number
        assert len(await xero_invoices(system, _reference(result))) == 1
        with system.database.session() as session:
            (billed,) = postings_for(session, project_id=project)
        assert billed.state == PostingState.BILLED
        assert await unbilled_time(system, project, period) == []
        history = await handle.fetch_history()
        assert len(scheduled_activities(history, "post_invoice")) == 1


async def test_a_xero_refusal_waits_with_finance_and_a_retry_posts_once_finance_fixed_it(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    contact = contract_of(system, project).erp_customer_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    ids = await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        await finance.call(
            "POST",
            f"/Contacts/{contact}",
            {"Contacts": [{"ContactID": contact, "ContactStatus": "ARCHIVED"}]},
        )
        handle = await begin_billing(system, project, period)
        await approve_when_asked(handle)
        status = await wait_for_stage(handle, "posting_rejected")

        assert status.posting_problem is not None and "has been archived" in status.posting_problem
        attributes = (await handle.describe()).typed_search_attributes
        assert attributes.get(sa.EXCEPTION_OWNER) == "finance"
        assert attributes.get(sa.SYNC_STAGE) == "posting_rejected"
        (refusal,) = exceptions(system, owner="finance")
        assert "must be un-archived" in refusal.reason and refusal.workflow_id == handle.id
        assert await unbilled_time(system, project, period) == ids
        with system.database.session() as session:
            assert postings_for(session, project_id=project) == []

        await finance.call(
            "POST", f"/Contacts/{contact}", {"Contacts": [{"ContactID": contact, "ContactStatus": "ACTIVE"}]}
        )
    finally:
        await finance.aclose()
    await handle.signal(TimeToBilling.retry, RetryRequest(actor="finance", note="contact restored"))
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None
    assert len(await xero_invoices(system, _reference(result))) == 1
    assert await unbilled_time(system, project, period) == []


@pytest.fixture
async def eu_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    """The EU entity configured with the Dutch reduced rate VAT9, which the Tryton books do not have yet.

    On the dev server: Tryton refuses invoices dated in the future, and the time-skipping server's clock
    runs ahead of the real one once other tests have skipped time."""
    entities = [
        entity.model_copy(update={"tax_codes": (*entity.tax_codes, "VAT9")})
        if entity.code == "EU"
        else entity
        for entity in default_entities()
    ]
    async with running_system(
        dev_env.client, tmp_path, sandboxes, tryton=tryton_server, settings_changes={"entities": entities}
    ) as system:
        yield system


async def test_a_tryton_refusal_for_a_missing_tax_waits_with_finance_and_a_retry_posts_once_the_tax_exists(
    eu_system: System,
) -> None:
    system = eu_system
    project = (
        await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"), plan=EU_DEAL)
    ).project_id
    change_contract(system, project, tax_code="VAT9")
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    ids = await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])

    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    status = await wait_for_stage(handle, "posting_rejected")

    assert status.posting_problem is not None and "Tryton has no tax named 'VAT9'" in status.posting_problem
    (refusal,) = exceptions(system, owner="finance")
    assert "VAT9" in refusal.reason and refusal.record["erp"] == "tryton"
    assert await unbilled_time(system, project, period) == ids

    # Finance creates the tax in Tryton; the exceptions queue then sends `retry`.
    tryton = system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)
    company, vat_account = await tryton.books.company(), await tryton.books.account(ACCOUNT_VAT)
    await tryton.rpc.create(
        "account.tax",
        [
            {
                "name": "VAT9",
                "description": "VAT 9%",
                "type": "percentage",
                "rate": Decimal("0.09"),
                "company": company,
                "invoice_account": vat_account,
                "credit_note_account": vat_account,
            }
        ],
    )
    await handle.signal(TimeToBilling.retry, RetryRequest(actor="finance"))
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None
    assert result.invoice.erp == "tryton" and result.invoice.total == Money.of("924.00", "EUR")
    assert await unbilled_time(system, project, period) == []


async def test_late_work_in_a_billed_period_goes_on_an_adjustment_invoice_and_nothing_is_billed_twice(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    first_day, second_day = working_days(period, 2)
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, first_day, ONE_DAY)])
    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    first: TimeToBillingResult = await handle.result()

    (late,) = await log_approved(system, project, [TimeLog(person.user_id, second_day, 240)])
    second: TimeToBillingResult = await (await begin_billing(system, project, period)).result()

    assert first.invoice is not None and second.invoice is not None
    assert second.outcome == "posted" and second.adjustment and not first.adjustment
    assert second.time_entries_billed == 1 and second.invoice.total == Money.of("400.00", "GBP")
    (adjustment,) = await xero_invoices(system, _reference(second))
    assert "-ADJ-" in adjustment["Reference"]
    with system.database.session() as session:
        assert [p.period for p in postings_for(session, project_id=project)] == [period.value, period.value]
    async with kantata(system) as seeder:
        (entry,) = await seeder.every("/time_entries", {"only": late, "include": "invoice"})
    assert entry["is_invoiced"] and await unbilled_time(system, project, period) == []


async def test_late_work_with_the_next_run_policy_is_handed_to_the_next_run_and_billed_there(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    change_contract(system, project, late_entries="next_run")
    period = previous_period(datetime.now(UTC).date())
    first_day, second_day = working_days(period, 2)
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, first_day, ONE_DAY)])
    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    await handle.result()

    (late,) = await log_approved(system, project, [TimeLog(person.user_id, second_day, 240)])
    deferred: TimeToBillingResult = await (await begin_billing(system, project, period)).result()

    # The current month's run (by workflow time, which the time-skipping server may have moved on).
    current = deferred.deferred_to
    assert deferred.outcome == "deferred" and current is not None
    assert current >= Period.of(datetime.now(UTC).date()).value > period.value
    assert await unbilled_time(system, project, period) == [late]
    following = system.client.get_workflow_handle(
        workflow_id(project, current), result_type=TimeToBillingResult
    )
    await following.signal(TimeToBilling.bill_now, BillNow(actor="finance"))
    billed: TimeToBillingResult = await following.result()

    assert billed.outcome == "posted" and billed.period == current and billed.time_entries_billed == 1
    assert billed.invoice is not None and billed.invoice.total == Money.of("400.00", "GBP")
    assert await unbilled_time(system, project, period) == []
    with system.database.session() as session:
        assert [p.period for p in postings_for(session, project_id=project)] == [period.value, current]


def _reference(result: TimeToBillingResult) -> str:
    assert result.idempotency_key is not None
    marker = "ADJ-" if result.adjustment else ""
    return f"PS-{result.project_id}-{result.period}-{marker}{result.idempotency_key[4:12]}"


async def test_a_run_stopped_between_posting_and_marking_billed_blocks_the_next_run_from_billing_twice(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    first_day, second_day = working_days(period, 2)
    person = await staff(system, project, "Consultant")
    ids = await log_approved(system, project, [TimeLog(person.user_id, first_day, ONE_DAY)])
    await set_faults(
        system.sandboxes.kantata.url, FaultConfig(server_error_rate=1.0, path_prefixes=("/api/v1/invoices",))
    )
    handle = await begin_billing(system, project, period)
    await approve_when_asked(handle)
    await wait_for_stage(handle, "marking_billed")
    # An operator terminates the run while Kantata is refusing the billed marks.
    await handle.terminate("stopped by ops")
    await set_faults(system.sandboxes.kantata.url, FaultConfig())
    await log_approved(system, project, [TimeLog(person.user_id, second_day, ONE_DAY)])

    result: TimeToBillingResult = await (await begin_billing(system, project, period)).result()

    assert result.outcome == "nothing_to_bill" and "not yet marked billed" in (result.reason or "")
    (blocked,) = exceptions(system, owner="integration_support")
    assert "never marked billed" in blocked.reason
    with system.database.session() as session:
        (posting,) = postings_for(session, project_id=project)
    assert posting.state == PostingState.POSTED
    assert ids[0] in await unbilled_time(system, project, period)


async def test_entries_billed_elsewhere_meanwhile_park_the_run_with_integration_support_after_posting(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    (entry,) = await log_approved(
        system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)]
    )
    handle = await begin_billing(system, project, period)
    await wait_for_stage(handle, "awaiting_approval")
    # While finance looks, someone invoices the entry by hand in Kantata.
    async with kantata(system) as seeder:
        await seeder.call(
            "POST",
            "/invoices",
            body={
                "invoice": {
                    "workspace_id": int(project),
                    "time_entry_ids": [int(entry)],
                    "payment_schedule": 30,
                }
            },
        )
    await approve_when_asked(handle)

    status = await wait_for_stage(handle, "marking_failed")
    assert status.invoice_number is not None
    (parked,) = exceptions(system, owner="integration_support")
    assert (
        "marking its entries billed in kantata failed" in parked.reason
        and f"time entry {entry}" in parked.reason
    )
    attributes = (await handle.describe()).typed_search_attributes
    assert attributes.get(sa.EXCEPTION_OWNER) == "integration_support"
    await handle.terminate("test over")


async def test_a_refusal_raised_by_tryton_itself_reaches_finance_in_trytons_words_and_a_retry_posts_once(
    eu_system: System,
) -> None:
    """Tryton, not our checks, refuses: the accounting period of the invoice date is closed."""
    system = eu_system
    tryton = system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)
    project = (
        await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"), plan=EU_DEAL)
    ).project_id
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])

    today = datetime.now(UTC).date()
    (accounting,) = await tryton.rpc.search_read(
        "account.period",
        [("start_date", "<=", today), ("end_date", ">=", today), ("type", "=", "standard")],
        ["id", "name"],
    )
    await tryton.rpc.button("account.period", "close", [accounting["id"]])
    try:
        handle = await begin_billing(system, project, period)
        await approve_when_asked(handle)
        status = await wait_for_stage(handle, "posting_rejected")
    finally:
        # As finance would: reopening the period leaves the journals Tryton closed with it (those already
        # posted to this month) closed, and each must be reopened too.
        await tryton.rpc.button("account.period", "reopen", [accounting["id"]])
        journals = await tryton.rpc.search(
            "account.journal.period", [("period", "=", accounting["id"]), ("state", "=", "closed")]
        )
        if journals:
            await tryton.rpc.button("account.journal.period", "reopen", journals)

    # Tryton's own message, naming its own period, not a paraphrase of ours.
    assert status.posting_problem is not None and accounting["name"] in status.posting_problem
    (refusal,) = exceptions(system, owner="finance")
    assert accounting["name"] in refusal.reason and refusal.record["erp"] == "tryton"
    assert "Tryton has no" not in refusal.reason

    # Finance reopened the period; the exceptions queue then sends `retry`.
    await handle.signal(TimeToBilling.retry, RetryRequest(actor="finance"))
    result: TimeToBillingResult = await handle.result()
    assert result.outcome == "posted" and result.invoice is not None and result.invoice.erp == "tryton"
    with system.database.session() as session:
        (posting,) = postings_for(session, project_id=project)
    assert posting.number == result.invoice.number
