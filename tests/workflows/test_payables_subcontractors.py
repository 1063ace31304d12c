"""Subcontracted time on a real Temporal dev server, the Kantata, Xero and Tryton sandboxes and the real
activities: a subcontractor's approved time becomes a bill to their firm at cost, once, with the firm's own
expenses and the project's dimensions; time without a cost rate is finance's to fix while the rest bills;
time approved after the bill goes on a bill of its own; a scan starts a run for a firm owed only time."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from canonical import Money, Period
from connectors.tryton.connector import TrytonConnector
from devstack.story import EU_DEAL, UK_DEAL
from domain.payables import vendor_supplier
from ledger.contracts import get_contract
from ledger.exception_queue import list_exceptions
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

from ..support.system import System
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, query_or_none, stamp
from .payables_steps import approved_time, bills_numbered, map_accounts, subcontracted, subcontractor
from .test_payables import dev_tryton_system  # noqa: F401  (the Tryton-backed system fixture)


def _firm() -> str:
    return f"Contractors {stamp()} Ltd"


def _today() -> Period:
    return Period.of(datetime.now(UTC).date())


async def _bills(system: System, input: PayablesInput, count: int) -> PayablesStatus:
    handle = system.client.get_workflow_handle(payables_id(input.psa, input.supplier_key, input.period))

    async def posted() -> PayablesStatus | None:
        status: PayablesStatus | None = await query_or_none(handle, "status", result_type=PayablesStatus)
        done = status is not None and status.stage == "awaiting_payment" and len(status.bills) == count
        return status if done else None

    return await eventually(posted, seconds=180, what=f"{count} bill(s) posted")


async def test_a_subcontractors_time_and_their_firms_expense_become_one_bill_at_cost_once(
    dev_system: System,
) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    firm = _firm()
    sam = await subcontractor(system, project.project_id, firm, Money.of("61.37", "GBP"))
    # Paid in euros only: nothing says what their GBP hours cost.
    eve = await subcontractor(system, project.project_id, firm, Money.of("70.00", "EUR"), name="Eve Euro")
    first, second = await approved_time(system, project.project_id, sam, 505, 25)
    (uncosted,) = await approved_time(system, project.project_id, eve, 50)
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        hotel = await kantata.log_expense(
            project.project_id,
            day=datetime.now(UTC).date(),
            amount=Money.of("310.00", "GBP"),
            category="Lodging",
            vendor=firm,
        )
    supplier = vendor_supplier(firm)
    input = PayablesInput(psa="kantata", supplier_key=supplier.key, period=_today().value)

    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)
    (bill,) = (await _bills(system, input, 1)).bills

    # 530 minutes are 8.8333 h as Xero keeps them; at 61.37 Xero books 542.10, and the hotel 310.00.
    assert bill.total == Money.of("852.10", "GBP")
    assert bill.expense_ids == (hotel,) and bill.time_entry_ids == (first, second)
    (booked,) = await bills_numbered(system, bill.number)
    assert booked["Contact"]["Name"] == firm and booked["Total"] == Decimal("852.10")
    time_line = next(line for line in booked["LineItems"] if line["AccountCode"] == "310")
    assert (time_line["Quantity"], time_line["UnitAmount"]) == (Decimal("8.8333"), Decimal("61.37"))
    with system.database.session() as session:
        contract = get_contract(session, psa="kantata", project_id=project.project_id)
    assert contract is not None and contract.erp_project is not None
    tracked = {(t["Name"].lower(), t["Option"]) for t in time_line["Tracking"]}
    assert tracked == {
        (value.dimension, value.code)
        for value in contract.erp_project.dimensions
        if value.dimension in ("project", "customer")
    }
    for entry_id in (first, second):
        assert (await subcontracted(system, _today(), entry_id)).bill_number == bill.number
    assert (await subcontracted(system, _today(), uncosted)).bill_number is None
    with system.database.session() as session:
        (problem,) = list_exceptions(session, process="payables")
    assert problem.owner == "finance" and problem.record["time_entry_id"] == uncosted
    assert "has no cost rate in GBP" in problem.reason and "Eve Euro" in problem.reason

    # A repeated start (the approval heard twice) joins the run and posts nothing more.
    await start_payables(system.client, task_queue=system.task_queue, input=input)
    assert len((await _bills(system, input, 1)).bills) == 1
    assert len(await bills_numbered(system, bill.number)) == 1

    # Paid in the ERP, the time is marked paid in the PSA.
    xero = system.connectors.erps.by_system("xero")
    await xero.pay_bill(  # type: ignore[attr-defined]
        bill.bill_id, bill.total, reference="subcontractors", idempotency_key=f"pay:{bill.bill_id}"
    )
    await handle.signal("bill_changed", BillChanged(bill_id=bill.bill_id))
    assert PayablesResult.model_validate(await handle.result()).outcome == "reimbursed"
    assert (await subcontracted(system, _today(), first)).paid


async def test_time_approved_after_the_bill_goes_on_a_new_bill_with_only_the_unbilled_entries(
    dev_system: System,
) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    firm = _firm()
    sam = await subcontractor(system, project.project_id, firm, Money.of("48.50", "GBP"))
    (early,) = await approved_time(system, project.project_id, sam, 7)
    input = PayablesInput(psa="kantata", supplier_key=vendor_supplier(firm).key, period=_today().value)
    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)
    await _bills(system, input, 1)

    (late,) = await approved_time(system, project.project_id, sam, 1440)
    await start_payables(
        system.client, task_queue=system.task_queue, input=input, approved=ExpensesApproved()
    )

    status = await _bills(system, input, 2)
    assert [b.time_entry_ids for b in status.bills] == [(early,), (late,)]
    # 7 minutes are 0.1167 h: 5.66; a whole day is 24 h: 1,164.00.
    assert [b.total for b in status.bills] == [Money.of("5.66", "GBP"), Money.of("1164.00", "GBP")]
    await handle.terminate("test finished")


async def test_a_scan_starts_a_run_for_a_firm_owed_only_subcontracted_time(dev_system: System) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story)
    firm = _firm()
    sam = await subcontractor(system, project.project_id, firm, Money.of("55.00", "GBP"))
    (entry,) = await approved_time(system, project.project_id, sam, 60)
    expected = payables_id("kantata", vendor_supplier(firm).key, _today().value)

    scanned = await system.client.execute_workflow(
        PayablesScan.run,
        PayablesScanInput(psa="kantata", period=_today().value),
        id=f"payables-scan:test:{entry}",
        task_queue=system.task_queue,
    )

    assert expected in scanned.started

    async def on_a_bill() -> bool:
        return (await subcontracted(system, _today(), entry)).bill_number is not None

    await eventually(on_a_bill, seconds=120, what="the time on a bill")
    await system.client.get_workflow_handle(expected).terminate("test finished")


@pytest.mark.tryton
async def test_a_subcontractors_time_on_an_eu_project_becomes_a_tryton_supplier_invoice_at_cost(
    dev_tryton_system: System,  # noqa: F811
) -> None:
    system = dev_tryton_system
    map_accounts(system, "EU")
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story, EU_DEAL)
    firm = _firm()
    sam = await subcontractor(system, project.project_id, firm, Money.of("61.37", "EUR"))
    await approved_time(system, project.project_id, sam, 505, 25)
    input = PayablesInput(psa="kantata", supplier_key=vendor_supplier(firm).key, period=_today().value)
    tryton = system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)

    handle = await start_payables(system.client, task_queue=system.task_queue, input=input)
    (bill,) = (await _bills(system, input, 1)).bills

    # Tryton keeps 2 places of hours: 8.83 h at 61.37 is 541.8971, booked 541.90.
    assert bill.legal_entity == "EU" and bill.total == Money.of("541.90", "EUR")
    await start_payables(system.client, task_queue=system.task_queue, input=input)
    found = await tryton.rpc.search_read(
        "account.invoice", [("type", "=", "in"), ("reference", "=", bill.number)], ["id", "state", "lines"]
    )
    assert [(str(r["id"]), r["state"]) for r in found] == [(bill.bill_id, "posted")]
    (line,) = await tryton.rpc.read(
        "account.invoice.line", found[0]["lines"], ["account", "quantity", "unit_price", "analytic_accounts"]
    )
    assert line["account"] == await tryton.books.account("5.1.3")
    assert (Decimal(str(line["quantity"])), line["unit_price"]) == (Decimal("8.83"), Decimal("61.37"))
    entries = await tryton.rpc.read("analytic.account.entry", line["analytic_accounts"], ["account"])
    assert len([e for e in entries if e["account"]]) >= 2
    await handle.terminate("test finished")


async def test_the_demo_story_bills_its_subcontractors_firm_at_cost_and_sees_the_bill_paid(
    dev_system: System,
) -> None:
    system = dev_system
    map_accounts(system)
    story = await prepared_story(system)
    uk = await project_from_a_won_deal(system, story)

    result = await story.play_subcontracted_time([(UK_DEAL, uk.project_id)])

    assert result.outcome == "reimbursed"
    (bill,) = result.bills
    # 445 minutes are 7.4167 h; at 61.37 an hour Xero books 455.16.
    assert (bill.legal_entity, bill.total, bill.paid) == ("UK", Money.of("455.16", "GBP"), True)
    assert bill.expense_ids == () and len(bill.time_entry_ids) == 1
