"""Payables on a real Temporal dev server, the Kantata and Xero sandboxes and the real activities: a
consultant's reimbursable expense becomes one bill, a repeated start makes no second one, and paying the
bill in the ERP marks the expense reimbursed in the PSA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from canonical import Money, Period
from connectors.tryton.connector import TrytonConnector
from connectors.xero import XeroConnector
from devstack.story import EU_DEAL, TAXI_FARE, UK_DEAL
from devstack.tryton import TrytonServer
from domain.payables import supplier_for
from ingress.exceptions_api import request_retry
from ledger.exception_queue import get_exception, list_exceptions
from runs.exception_action import ExceptionActionResult
from runs.payables import (
    BillChanged,
    ExpensesApproved,
    PayablesInput,
    PayablesResult,
    PayablesScanInput,
    PayablesStatus,
    start_payables,
)
from runs.payables import workflow_id as payables_id
from sandboxes.kantata.seed import KantataSeeder
from workflows.payables_scan import PayablesScan

from ..support.system import Sandboxes, System, running_system
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, query_or_none, stamp
from .payables_steps import bills_numbered, map_accounts, payable, reimbursable_expense


async def test_a_reimbursable_expense_becomes_one_bill_and_its_payment_marks_it_reimbursed(
    dev_system: System,
) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    user_id, expense_id, period = await reimbursable_expense(system, project.project_id, "42.50")
    supplier = supplier_for("kantata", await payable(system, period, expense_id))
    assert supplier.key == f"person:kantata:{user_id}"
    input = PayablesInput(psa="kantata", supplier_key=supplier.key, period=period.value)

    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)

    async def awaiting_payment() -> PayablesStatus | None:
        status: PayablesStatus | None = await query_or_none(handle, "status", result_type=PayablesStatus)
        return status if status is not None and status.stage == "awaiting_payment" else None

    status = await eventually(awaiting_payment, seconds=120, what="the bill posted")
    (bill,) = status.bills
    assert bill.expense_ids == (expense_id,)
    assert bill.total == Money.of("42.50", "GBP")
    # A repeated start (the approval heard twice) reaches the same run and posts nothing more.
    again = await start_payables(system.client, task_queue=system.task_queue, input=input)
    assert again.id == handle.id == payables_id("kantata", supplier.key, period.value)
    assert (await again.describe()).run_id == (await handle.describe()).run_id
    (booked,) = await bills_numbered(system, bill.number)
    assert booked["Contact"]["ContactID"] == (
        await system.connectors.erps.by_system("xero").ensure_supplier(  # type: ignore[attr-defined]
            supplier, entity=next(e for e in system.settings.entities if e.code == "UK"), idempotency_key="t"
        )
    )
    assert [line["AccountCode"] for line in booked["LineItems"]] == ["493"]
    assert f"Kantata expense {expense_id}" in booked["LineItems"][0]["Description"]
    on_bill = await payable(system, period, expense_id)
    assert (on_bill.bill_number, on_bill.reimbursed) == (bill.number, False)

    xero = system.connectors.erps.by_system("xero")
    assert isinstance(xero, XeroConnector)
    await xero.pay_bill(
        bill.bill_id, bill.total, reference="expenses paid", idempotency_key=f"pay:{bill.bill_id}"
    )
    await handle.signal("bill_changed", BillChanged(bill_id=bill.bill_id))

    result = PayablesResult.model_validate(await handle.result())
    assert result.outcome == "reimbursed"
    assert [b.paid for b in result.bills] == [True]
    reimbursed = await payable(system, period, expense_id)
    assert (reimbursed.bill_number, reimbursed.reimbursed) == (bill.number, True)

    # Started again after it finished, the run finds nothing new to bill: still one bill.
    rerun = await start_payables(system.client, task_queue=system.task_queue, input=input)
    assert PayablesResult.model_validate(await rerun.result()).outcome == "nothing_to_bill"
    assert len(await bills_numbered(system, bill.number)) == 1


async def test_an_expense_without_a_cost_account_is_a_finance_exception_and_no_bill(
    dev_system: System,
) -> None:
    system = dev_system
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    user_id, expense_id, period = await reimbursable_expense(system, project.project_id, "18.00")
    input = PayablesInput(psa="kantata", supplier_key=f"person:kantata:{user_id}", period=period.value)

    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)
    result = PayablesResult.model_validate(await handle.result())

    assert result.outcome == "nothing_to_bill"
    assert result.bills == ()
    with system.database.session() as session:
        (item,) = list_exceptions(session, process="payables")
    assert item.owner == "finance"
    assert item.record["expense_id"] == expense_id
    assert "no cost account is mapped" in item.reason and "--cost-account" in item.reason
    assert (await payable(system, period, expense_id)).bill_number is None


async def test_retrying_the_exception_once_finance_maps_the_cost_account_bills_the_expense_and_resolves_it(
    dev_system: System,
) -> None:
    system = dev_system
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    user_id, expense_id, period = await reimbursable_expense(system, project.project_id, "18.00")
    input = PayablesInput(psa="kantata", supplier_key=f"person:kantata:{user_id}", period=period.value)
    first = await start_payables(system.client, task_queue=system.task_queue, input=input)
    assert PayablesResult.model_validate(await first.result()).outcome == "nothing_to_bill"
    with system.database.session() as session:
        (item,) = list_exceptions(session, process="payables")

    map_accounts(system)
    started = await request_retry(
        system.database, system.client, system.settings, exception_id=item.id, actor="finance.lead"
    )
    action = system.client.get_workflow_handle(started.workflow_id, result_type=ExceptionActionResult)
    outcome = await action.result()

    assert outcome.outcome == "resolved" and outcome.retried_workflow_id == first.id
    on_bill = await payable(system, period, expense_id)
    assert on_bill.bill_number is not None and (await bills_numbered(system, on_bill.bill_number))
    with system.database.session() as session:
        settled = get_exception(session, exception_id=item.id)
    assert settled is not None and settled.status == "resolved"
    await system.client.get_workflow_handle(first.id).terminate("test finished")


@pytest.fixture
async def dev_tryton_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    # The wall clock: Tryton refuses a supplier invoice dated after its own today.
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


@pytest.mark.tryton
async def test_an_eu_consultants_expense_becomes_a_tryton_supplier_invoice_paid_once(
    dev_tryton_system: System,
) -> None:
    system = dev_tryton_system
    map_accounts(system, "EU")
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story, EU_DEAL)
    user_id, expense_id, period = await reimbursable_expense(system, project.project_id, "64.20", "EUR")
    input = PayablesInput(psa="kantata", supplier_key=f"person:kantata:{user_id}", period=period.value)
    tryton = system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)

    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)

    async def awaiting_payment() -> PayablesStatus | None:
        status: PayablesStatus | None = await query_or_none(handle, "status", result_type=PayablesStatus)
        return status if status is not None and status.stage == "awaiting_payment" else None

    (bill,) = (await eventually(awaiting_payment, seconds=180, what="the bill posted")).bills
    assert bill.legal_entity == "EU" and bill.total == Money.of("64.20", "EUR")
    await start_payables(system.client, task_queue=system.task_queue, input=input)
    found = await tryton.rpc.search_read(
        "account.invoice", [("type", "=", "in"), ("reference", "=", bill.number)], ["id", "state", "lines"]
    )
    assert [(str(r["id"]), r["state"]) for r in found] == [(bill.bill_id, "posted")]
    (line,) = await tryton.rpc.read("account.invoice.line", found[0]["lines"], ["account"])
    assert line["account"] == await tryton.books.account("5.1.3")

    await tryton.pay_bill(bill.bill_id, bill.total, reference="SEPA", idempotency_key=f"pay:{bill.bill_id}")
    await handle.signal("bill_changed", BillChanged(bill_id=bill.bill_id))

    assert PayablesResult.model_validate(await handle.result()).outcome == "reimbursed"
    reimbursed = await payable(system, period, expense_id)
    assert (reimbursed.bill_number, reimbursed.reimbursed) == (bill.number, True)


async def test_a_scan_starts_one_run_per_supplier_owed_and_none_once_the_expense_is_on_a_bill(
    dev_system: System,
) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    user_id, expense_id, period = await reimbursable_expense(system, project.project_id, "12.40")
    expected = payables_id("kantata", f"person:kantata:{user_id}", period.value)
    scan = PayablesScanInput(psa="kantata", period=period.value)

    first = await system.client.execute_workflow(
        PayablesScan.run, scan, id=f"payables-scan:test:{expense_id}", task_queue=system.task_queue
    )

    assert expected in first.started
    handle = system.client.get_workflow_handle(expected)

    async def on_a_bill() -> bool:
        return (await payable(system, period, expense_id)).bill_number is not None

    await eventually(on_a_bill, seconds=120, what="the expense on a bill")
    second = await system.client.execute_workflow(
        PayablesScan.run, scan, id=f"payables-scan:test:{expense_id}:again", task_queue=system.task_queue
    )
    assert expected not in second.started
    status: PayablesStatus = await handle.query("status", result_type=PayablesStatus)
    assert [bill.expense_ids for bill in status.bills] == [(expense_id,)]
    await handle.terminate("test finished")


async def test_an_expense_approved_while_the_run_waits_for_payment_becomes_a_bill_of_its_own(
    dev_system: System,
) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    user_id, first_id, period = await reimbursable_expense(system, project.project_id, "20.00")
    input = PayablesInput(psa="kantata", supplier_key=f"person:kantata:{user_id}", period=period.value)
    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)

    async def bills(count: int) -> PayablesStatus | None:
        status: PayablesStatus | None = await query_or_none(handle, "status", result_type=PayablesStatus)
        done = status is not None and status.stage == "awaiting_payment" and len(status.bills) == count
        return status if done else None

    await eventually(lambda: bills(1), seconds=120, what="the first bill")
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        second_id = await kantata.log_expense(
            project.project_id,
            day=period.first_day,
            amount=Money.of("7.50", "GBP"),
            user_id=user_id,
            reimbursable=True,
            billable=False,
        )
    await start_payables(
        system.client,
        task_queue=system.task_queue,
        input=input,
        approved=ExpensesApproved(expense_ids=(second_id,)),
    )

    status = await eventually(lambda: bills(2), seconds=120, what="the second bill")
    assert [bill.expense_ids for bill in status.bills] == [(first_id,), (second_id,)]
    assert status.bills[1].total == Money.of("7.50", "GBP")
    assert status.bills[0].number != status.bills[1].number
    await handle.terminate("test finished")


@pytest.mark.tryton
async def test_the_demo_story_bills_a_consultants_taxi_fares_in_both_erps_and_sees_them_reimbursed(
    dev_tryton_system: System,
) -> None:
    system = dev_tryton_system
    map_accounts(system, "UK")
    map_accounts(system, "EU")
    story = await prepared_story(system)
    uk = await project_from_a_won_deal(system, story, UK_DEAL)
    eu = await project_from_a_won_deal(system, story, EU_DEAL)

    result = await story.play_payables([(UK_DEAL, uk.project_id), (EU_DEAL, eu.project_id)])

    assert result.outcome == "reimbursed"
    assert sorted((bill.legal_entity, bill.total, bill.paid) for bill in result.bills) == [
        ("EU", Money.of(TAXI_FARE, "EUR"), True),
        ("UK", Money.of(TAXI_FARE, "GBP"), True),
    ]


async def test_a_supplier_cost_held_in_the_psa_becomes_a_bill_to_its_vendor(dev_system: System) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    who = stamp()
    vendor = f"Grand Hotel {who} Ltd"
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        person = await kantata.consultant(f"Lena Berg {who}", f"lena.{who}@northwind.example", "Consultant")
        expense_id = await kantata.log_expense(
            project.project_id,
            day=datetime.now(UTC).date(),
            amount=Money.of("310.00", "GBP"),
            category="Lodging",
            user_id=person.user_id,
            vendor=vendor,
        )
    period = Period.of(datetime.now(UTC).date())
    supplier = supplier_for("kantata", await payable(system, period, expense_id))
    assert supplier.key.startswith("vendor:grand-hotel-") and supplier.name == vendor

    handle = await start_payables(
        system.client,
        task_queue=system.task_queue,
        input=PayablesInput(psa="kantata", supplier_key=supplier.key, period=period.value),
    )

    async def billed() -> PayablesStatus | None:
        status: PayablesStatus | None = await query_or_none(handle, "status", result_type=PayablesStatus)
        return status if status is not None and status.bills else None

    (bill,) = (await eventually(billed, seconds=120, what="the vendor's bill")).bills
    (booked,) = await bills_numbered(system, bill.number)
    assert booked["Contact"]["Name"] == vendor
    assert booked["Total"] == Decimal("310.00") and booked["LineItems"][0]["AccountCode"] == "493"
    await handle.terminate("test finished")
