"""Payables reconciliation on a real Temporal dev server, the Kantata and Xero sandboxes and the ledger: bills
the Payables run posted agree across ledger, ERP and PSA; a bill voided in the ERP, or paid there while the
PSA does not show it reimbursed, is an exception, resolved by the first run that finds it settled."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from canonical import ExceptionOwner, Period
from connectors.xero import XeroConnector
from devstack.story import EU_DEAL, UK_DEAL, DealPlan
from devstack.tryton import TrytonServer
from domain.payables import supplier_for
from domain.reconcile import Difference
from domain.reconcile_payables import PAYABLES
from ledger.bill_postings import bill_postings_for
from ledger.exception_queue import get_exception, list_exceptions
from runs.payables import (
    BillChanged,
    PayablesInput,
    PayablesResult,
    PayablesStatus,
    TrackedBill,
    start_payables,
)
from runs.reconciliation import ReconciliationInput
from workflows.reconciliation import Reconciliation, ReconciliationResult

from ..support.system import Sandboxes, System, running_system
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, query_or_none
from .payables_steps import map_accounts, payable, reimbursable_expense


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


async def a_posted_bill(
    system: System, amount: str, plan: DealPlan = UK_DEAL
) -> tuple[WorkflowHandle[object, object], TrackedBill, str, Period]:
    """A consultant's reimbursable expense billed by the Payables run, which then waits for payment."""
    entity, currency = ("EU", "EUR") if plan is EU_DEAL else ("UK", "GBP")
    map_accounts(system, entity)
    story = await prepared_story(system)
    project = await project_from_a_won_deal(system, story, plan)
    _, expense_id, period = await reimbursable_expense(system, project.project_id, amount, currency)
    supplier = supplier_for("kantata", await payable(system, period, expense_id))
    handle = await start_payables(
        system.client,
        task_queue=system.task_queue,
        input=PayablesInput(psa="kantata", supplier_key=supplier.key, period=period.value),
    )

    async def awaiting_payment() -> PayablesStatus | None:
        status: PayablesStatus | None = await query_or_none(handle, "status", result_type=PayablesStatus)
        return status if status is not None and status.stage == "awaiting_payment" else None

    (bill,) = (await eventually(awaiting_payment, seconds=180, what="the bill posted")).bills
    return handle, bill, expense_id, period


def about(result: ReconciliationResult, bill: TrackedBill) -> list[Difference]:
    # The sandboxes are shared by the session: other tests' bills of the period are there too.
    return [d for d in result.differences if d.project_id == PAYABLES and d.invoice_number == bill.number]


async def test_a_posted_bill_agrees_and_once_voided_in_the_erp_is_a_difference_for_finance(
    dev_system: System,
) -> None:
    system = dev_system
    handle, bill, expense_id, period = await a_posted_bill(system, "42.50")
    with system.database.session() as session:
        (recorded,) = [
            b for b in bill_postings_for(session, legal_entity="UK", period=period) if b.number == bill.number
        ]
    assert recorded.bill_id == bill.bill_id and recorded.total == bill.total
    assert recorded.source_ids == ((expense_id,),) and recorded.supplier_key.startswith("person:kantata:")

    agreed = await reconcile(system, period)

    assert about(agreed, bill) == []
    (row,) = [row for row in agreed.payables_rows if row.currency == "GBP"]
    assert row.legal_entity == "UK" and row.ledger_bills == 1 and row.ledger_amount == bill.total.amount
    assert row.erp_bills >= 1 and row.psa_on_bills >= 1

    xero = system.connectors.erps.by_system("xero")
    assert isinstance(xero, XeroConnector)
    await xero.void_invoice(bill.bill_id)

    voided = await reconcile(system, period)

    (difference,) = about(voided, bill)
    assert difference.kind == "bill_voided_in_erp" and difference.owner == ExceptionOwner.FINANCE
    assert difference.entry_ids == (expense_id,)
    assert difference.lines[0].ledger_amount == bill.total.amount
    with system.database.session() as session:
        (item,) = [
            i
            for i in list_exceptions(session, process="reconciliation")
            if i.record.get("bill_number") == bill.number
        ]
    assert item.owner == "finance" and item.status == "open"
    assert item.record["bill_id"] == bill.bill_id and item.record["supplier_key"] == recorded.supplier_key
    await handle.terminate("test finished")


async def test_a_bill_paid_in_the_erp_but_not_reimbursed_in_the_psa_differs_until_the_run_marks_it(
    dev_system: System,
) -> None:
    system = dev_system
    handle, bill, expense_id, period = await a_posted_bill(system, "18.40")
    xero = system.connectors.erps.by_system("xero")
    assert isinstance(xero, XeroConnector)
    # Paid in the ERP, and the run not told: it would read the bill only at its next hourly check.
    await xero.pay_bill(
        bill.bill_id, bill.total, reference="expenses paid", idempotency_key=f"pay:{bill.bill_id}"
    )

    unpaid_in_psa = await reconcile(system, period)

    (difference,) = about(unpaid_in_psa, bill)
    assert difference.kind == "paid_bill_not_settled_in_psa"
    assert difference.owner == ExceptionOwner.INTEGRATION_SUPPORT
    assert difference.entry_ids == (expense_id,)
    with system.database.session() as session:
        (item,) = [
            i
            for i in list_exceptions(session, process="reconciliation")
            if i.record.get("bill_number") == bill.number
        ]
    assert item.status == "open"

    # The fix: the run hears the bill changed, reads it paid and marks the expense reimbursed.
    await handle.signal("bill_changed", BillChanged(bill_id=bill.bill_id))
    assert PayablesResult.model_validate(await handle.result()).outcome == "reimbursed"
    assert (await payable(system, period, expense_id)).reimbursed

    settled = await reconcile(system, period)

    assert about(settled, bill) == []
    assert item.id in settled.resolved_exceptions
    with system.database.session() as session:
        resolved = get_exception(session, exception_id=item.id)
    assert resolved is not None and resolved.status == "resolved"


@pytest.fixture
async def dev_tryton_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    # The wall clock: Tryton refuses a supplier invoice dated after its own today.
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


@pytest.mark.tryton
async def test_an_eu_bill_agrees_with_the_supplier_invoice_tryton_holds_and_its_lines_bookings(
    dev_tryton_system: System,
) -> None:
    system = dev_tryton_system
    handle, bill, _, period = await a_posted_bill(system, "64.20", EU_DEAL)

    result = await reconcile(system, period, "EU")

    assert about(result, bill) == []
    (row,) = [row for row in result.payables_rows if row.currency == "EUR"]
    assert row.legal_entity == "EU" and row.ledger_bills == 1 and row.ledger_amount == bill.total.amount
    assert row.erp_bills >= 1 and row.erp_amount >= bill.total.amount
    await handle.terminate("test finished")
