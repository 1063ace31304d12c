"""InvoiceToCash on real Temporal servers: money followed in Xero (and Tryton), pushed to Kantata and
Salesforce, dunning on a skipped clock, write-off, overpayment."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from canonical import Invoice, InvoiceLine, InvoiceState, LegalEntity, Money, ReceivablesSummary
from connectors.tryton.connector import TrytonConnector
from devstack.story import EU_DEAL, UK_DEAL, DealPlan
from devstack.tryton import TrytonServer
from ledger.repository import audit_trail, get_contract, list_exceptions
from runs import search_attributes as sa
from runs.invoice_to_cash import (
    InvoiceChanged,
    InvoiceToCashInput,
    InvoiceToCashResult,
    WriteOffRequest,
    workflow_id,
)
from sandboxes.kantata.seed import KantataSeeder
from sandboxes.salesforce.seed import SalesforceSeeder
from sandboxes.xero.seed import XeroFinanceUser
from workflows.invoice_to_cash import InvoiceToCash

from ..support.system import Sandboxes, System, running_system
from ..support.tryton_finance import register_overpayment
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, scheduled_activity_names, stamp

DAY = 86400


@dataclass
class Followed:
    system: System
    input: InvoiceToCashInput
    handle: WorkflowHandle[Any, InvoiceToCashResult]
    gross: Money
    account_owner_id: str | None

    async def status(self) -> Any:
        return await self.handle.query(InvoiceToCash.status)

    async def nudge(self) -> None:
        # What the Xero webhook does through the ingress: the next check comes at once.
        await self.handle.signal(InvoiceToCash.invoice_changed, InvoiceChanged(event_type="UPDATE"))

    async def seen(self, what: str, probe: Any) -> Any:
        async def check() -> Any:
            summary = (await self.status()).summary
            return summary if summary is not None and probe(summary) else None

        return await eventually(check, what=what)


async def _follow_a_new_invoice(
    system: System,
    env: WorkflowEnvironment,
    *,
    plan: DealPlan = UK_DEAL,
    due_in_days: int = 14,
    poll_seconds: int = DAY,
    from_posting: bool = False,
) -> Followed:
    """A won deal made into a project, a net 1,000.00 invoice posted for it, and its InvoiceToCash run.

    Dates follow the workflow clock (the time-skipping server's clock runs ahead of the wall clock)."""
    story = await prepared_story(system)
    created = await project_from_a_won_deal(system, story, plan)
    with system.database.session() as session:
        contract = get_contract(session, psa="kantata", project_id=created.project_id)
    assert contract is not None
    entity = next(e for e in system.settings.entities if e.code == created.legal_entity)
    today = (await env.get_current_time()).date()
    invoice = Invoice(
        legal_entity=entity.code,
        customer_id=created.erp_customer_id,
        customer_name=contract.customer_name,
        project_id=created.project_id,
        period=f"{today.year:04d}-{today.month:02d}",
        currency=entity.currency,
        issue_date=today - timedelta(days=max(0, -due_in_days)),
        due_date=today + timedelta(days=due_in_days),
        reference=f"PS-{created.project_id}-{stamp()}",
        lines=(_consulting(entity),),
    )
    erp = system.connectors.erps.by_system(created.erp)
    posted = await erp.post_invoice(invoice, entity=entity, idempotency_key=f"test:{invoice.reference}")
    follow = InvoiceToCashInput(
        erp=posted.erp,
        invoice_id=posted.invoice_id,
        invoice_number=posted.number,
        project_id=created.project_id,
        psa="kantata",
        crm="salesforce",
        opportunity_id=created.opportunity_id,
        account_id=created.account_id,
        account_owner_id=contract.account_owner_id,
        legal_entity=entity.code,
        poll_interval_seconds=poll_seconds,
        # As TimeToBilling hands it over when the ERP's answer to the post carried the invoice.
        as_posted=ReceivablesSummary.of(posted.status) if from_posting and posted.status else None,
    )
    handle = await system.client.start_workflow(
        InvoiceToCash.run,
        follow,
        id=workflow_id(posted.erp, posted.invoice_id),
        task_queue=system.task_queue,
        result_type=InvoiceToCashResult,
    )
    gross = (await erp.get_invoice(posted.invoice_id)).total
    followed = Followed(system, follow, handle, gross, contract.account_owner_id)
    await followed.seen("the first check", lambda s: True)
    return followed


def _consulting(entity: LegalEntity) -> InvoiceLine:
    return InvoiceLine(
        description="Consulting, 10 days",
        quantity=Decimal(10),
        unit_price=Money.of("100.00", entity.currency),
        tax_code=entity.default_tax_code,
        rounding=entity.line_rounding,
    )


async def _crm_opportunity(system: System, opportunity_id: str) -> dict[str, Any]:
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        return await salesforce.get("Opportunity", opportunity_id)


async def _crm_tasks(system: System, key_prefix: str) -> list[dict[str, Any]]:
    """The dunning tasks of an invoice, looked up by the keys of the three stages."""
    found: list[dict[str, Any]] = []
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        for stage in (1, 2, 3):
            found.extend(
                await salesforce.query(
                    "SELECT Id, Subject, OwnerId, WhatId, PSSync_Task_Key__c FROM Task "
                    f"WHERE PSSync_Task_Key__c = '{key_prefix}stage-{stage}'"
                )
            )
    return found


async def _psa_invoice_lines(system: System, project_id: str) -> list[str]:
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        values = await kantata.every(
            "/custom_field_values", {"subject_type": "Workspace", "with_subject_id": project_id}
        )
    text = next((v["value"] for v in values if v.get("custom_field_name") == "ERP Invoices"), None) or ""
    return [line for line in text.splitlines() if line.strip()]


def _money(value: Any, currency: str) -> Money:
    return Money(amount=Decimal(str(value)), currency=currency)


async def test_partial_then_final_payment_is_pushed_to_psa_and_crm_and_the_run_ends_paid(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)
    currency = followed.gross.currency
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        await finance.apply_payment(followed.input.invoice_id, Decimal("200.00"), reference="BACS part")
        await followed.nudge()
        await followed.seen("the partial payment", lambda s: s.amount_paid == Money.of("200.00", currency))

        opportunity = await _crm_opportunity(ts_system, followed.input.opportunity_id)
        assert opportunity["Invoice_Status__c"] == "Awaiting Payment"
        assert _money(opportunity["Amount_Paid__c"], currency) == Money.of("200.00", currency)
        assert _money(opportunity["Amount_Due__c"], currency) == followed.gross - Money.of("200.00", currency)
        (line,) = await _psa_invoice_lines(ts_system, followed.input.project_id)
        assert f"{followed.input.invoice_number} | awaiting_payment" in line and "paid 200.00" in line

        await finance.apply_payment(
            followed.input.invoice_id,
            (followed.gross - Money.of("200.00", currency)).amount,
            reference="BACS",
        )
    finally:
        await finance.aclose()
    await followed.nudge()
    result = await followed.handle.result()

    assert result.outcome == "paid" and result.overpaid is None
    assert result.summary.amount_paid == followed.gross and result.summary.amount_due.is_zero()
    opportunity = await _crm_opportunity(ts_system, followed.input.opportunity_id)
    assert opportunity["Invoice_Status__c"] == "Paid"
    assert _money(opportunity["Amount_Due__c"], currency).is_zero()
    (line,) = await _psa_invoice_lines(ts_system, followed.input.project_id)
    assert f"{followed.input.invoice_number} | paid" in line, "one line per invoice, rewritten in place"
    description = await followed.handle.describe()
    assert description.typed_search_attributes.get(sa.SYNC_STAGE) == "paid"


async def test_partial_credit_note_is_pushed_and_a_credit_for_the_rest_ends_the_run_credited(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)
    currency = followed.gross.currency
    xero = ts_system.connectors.erps.by_system("xero")
    part = Money.of("300.00", currency)

    await xero.credit_invoice(
        followed.input.invoice_id, part, reason="scope cut", idempotency_key=str(uuid.uuid4())
    )
    await followed.nudge()
    await followed.seen("the partial credit", lambda s: s.amount_credited == part)
    opportunity = await _crm_opportunity(ts_system, followed.input.opportunity_id)
    assert _money(opportunity["Amount_Due__c"], currency) == followed.gross - part
    assert (await followed.status()).stage == "awaiting_payment"

    await xero.credit_invoice(
        followed.input.invoice_id,
        followed.gross - part,
        reason="cancelled",
        idempotency_key=str(uuid.uuid4()),
    )
    await followed.nudge()
    result = await followed.handle.result()

    assert result.outcome == "credited"
    assert result.summary.amount_credited == followed.gross and result.summary.amount_paid.is_zero()


async def test_voided_invoice_ends_the_run_voided_and_the_crm_says_so(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)

    await ts_system.connectors.erps.by_system("xero").void_invoice(followed.input.invoice_id)
    await followed.nudge()
    result = await followed.handle.result()

    assert result.outcome == "voided" and result.summary.state == InvoiceState.VOIDED
    opportunity = await _crm_opportunity(ts_system, followed.input.opportunity_id)
    assert opportunity["Invoice_Status__c"] == "Voided"


async def test_dunning_tasks_reach_the_account_owner_at_7_and_14_days_overdue_and_stop_when_paid(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env, due_in_days=1)
    prefix = f"dunning:xero:{followed.input.invoice_id}:"

    await ts_env.sleep(timedelta(days=7))
    assert (await followed.status()).dunning_stage == 0, "not yet 7 days past due"
    assert await _crm_tasks(ts_system, prefix) == []

    await ts_env.sleep(timedelta(days=2))
    await eventually(lambda: _at_stage(followed, 1), what="the first reminder")
    (task,) = await _crm_tasks(ts_system, prefix)
    assert task["PSSync_Task_Key__c"] == f"{prefix}stage-1"
    assert task["OwnerId"] == followed.account_owner_id and task["WhatId"] == followed.input.account_id
    assert followed.input.invoice_number in task["Subject"] and "reminder 1 of 3" in task["Subject"]

    await ts_env.sleep(timedelta(days=7))
    await eventually(lambda: _at_stage(followed, 2), what="the second reminder")
    description = await followed.handle.describe()
    assert description.typed_search_attributes.get(sa.SYNC_STAGE) == "dunning_stage_2"
    assert sorted(t["PSSync_Task_Key__c"] for t in await _crm_tasks(ts_system, prefix)) == [
        f"{prefix}stage-1",
        f"{prefix}stage-2",
    ]

    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        await finance.apply_payment(followed.input.invoice_id, followed.gross.amount, reference="late BACS")
    finally:
        await finance.aclose()
    await followed.nudge()
    result = await followed.handle.result()
    await ts_env.sleep(timedelta(days=20))

    assert result.outcome == "paid" and result.dunning_stage == 2
    assert len(await _crm_tasks(ts_system, prefix)) == 2, "no third reminder after payment"
    with ts_system.database.session() as session:
        trail = audit_trail(session, key=f"xero:{followed.input.invoice_id}")
    assert [e.action for e in sorted(trail, key=lambda e: e.id)] == [
        "dunning_stage_1",
        "dunning_stage_2",
        "invoice_paid",
    ]


async def _at_stage(followed: Followed, stage: int) -> bool:
    return (await followed.status()).dunning_stage == stage


async def test_long_overdue_invoice_gets_only_its_most_advanced_reminder_and_finance_takes_over(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env, due_in_days=-31)

    await eventually(lambda: _at_stage(followed, 3), what="the final reminder")
    status = await followed.status()

    assert status.dunning_skipped == (1, 2)
    prefix = f"dunning:xero:{followed.input.invoice_id}:"
    assert [t["PSSync_Task_Key__c"] for t in await _crm_tasks(ts_system, prefix)] == [f"{prefix}stage-3"]
    description = await followed.handle.describe()
    assert description.typed_search_attributes.get(sa.EXCEPTION_OWNER) == "finance"
    with ts_system.database.session() as session:
        finance_items = [
            e for e in list_exceptions(session, owner="finance") if e.workflow_id == followed.handle.id
        ]
    assert len(finance_items) == 1 and "31 days overdue" not in finance_items[0].reason
    assert "30 days overdue after every reminder" in finance_items[0].reason
    await followed.handle.terminate("test done")


async def test_a_run_continued_as_new_does_not_repeat_the_reminders_it_carried_over(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env, due_in_days=-10)
    await eventually(lambda: _at_stage(followed, 1), what="the first reminder")
    await followed.handle.terminate("replaced by a continued run")
    prefix = f"dunning:xero:{followed.input.invoice_id}:"
    (first,) = await _crm_tasks(ts_system, prefix)

    # What continue-as-new hands over: the stage reached and the summary last pushed.
    carried = followed.input.model_copy(
        update={"dunning_stage": 1, "last_pushed": (await followed.status()).summary}
    )
    handle = await ts_system.client.start_workflow(
        InvoiceToCash.run, carried, id=followed.handle.id, task_queue=ts_system.task_queue
    )
    await ts_env.sleep(timedelta(days=3))
    await eventually(
        lambda: _stage_is(handle, "dunning_stage_1"), what="the continued run to start where it was"
    )
    assert [t["Id"] for t in await _crm_tasks(ts_system, prefix)] == [first["Id"]]

    await ts_env.sleep(timedelta(days=2))
    status = await eventually(lambda: _reached(handle, 2), what="the second reminder")
    assert status.dunning_skipped == ()
    assert len(await _crm_tasks(ts_system, prefix)) == 2
    await handle.terminate("test done")


async def _stage_is(handle: WorkflowHandle[Any, Any], stage: str) -> bool:
    return (await handle.query(InvoiceToCash.status)).stage == stage


async def _reached(handle: WorkflowHandle[Any, Any], stage: int) -> Any:
    status = await handle.query(InvoiceToCash.status)
    return status if status.dunning_stage == stage else None


async def test_write_off_credits_what_is_still_due_with_the_reason_and_ends_written_off(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)
    currency = followed.gross.currency
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        await finance.apply_payment(followed.input.invoice_id, Decimal("500.00"), reference="BACS part")
        await followed.nudge()
        await followed.seen("the partial payment", lambda s: s.amount_paid == Money.of("500.00", currency))

        due = followed.gross - Money.of("500.00", currency)
        accepted = await followed.handle.execute_update(
            InvoiceToCash.write_off_invoice,
            WriteOffRequest(actor="finance.lead", reason="customer in administration", expected_due=due),
        )
        assert accepted.amount_due == due and accepted.requested_by == "finance.lead"
        result = await followed.handle.result()
        invoice = await finance.get_invoice(followed.input.invoice_id)
        (note_ref,) = invoice["CreditNotes"]
        note = (await finance.call("GET", f"/CreditNotes/{note_ref['CreditNoteID']}"))["CreditNotes"][0]
    finally:
        await finance.aclose()

    outstanding = followed.gross - Money.of("500.00", currency)
    assert result.outcome == "written_off"
    assert result.written_off == outstanding and result.write_off_reason == "customer in administration"
    assert result.summary.state == InvoiceState.WRITTEN_OFF and result.summary.amount_due.is_zero()
    assert _money(note["Total"], currency) == outstanding
    assert "customer in administration" in note["LineItems"][0]["Description"]
    assert "finance.lead" in note["LineItems"][0]["Description"]
    opportunity = await _crm_opportunity(ts_system, followed.input.opportunity_id)
    assert opportunity["Invoice_Status__c"] == "Written Off"
    (line,) = await _psa_invoice_lines(ts_system, followed.input.project_id)
    assert "| written_off |" in line
    with ts_system.database.session() as session:
        (entry,) = [
            e
            for e in audit_trail(session, key=f"xero:{followed.input.invoice_id}")
            if e.action == "invoice_written_off"
        ]
    assert entry.detail == {
        "actor": "finance.lead",
        "reason": "customer in administration",
        "amount": str(outstanding),
    }


async def test_a_write_off_is_refused_unless_it_names_the_amount_due_with_a_reason(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)
    await followed.seen("the invoice read", lambda s: s.amount_due == followed.gross)
    less = followed.gross - Money.of("0.01", followed.gross.currency)
    refusals = [
        (WriteOffRequest(actor="finance.lead", reason="bad debt"), "must name the amount due"),
        (
            WriteOffRequest(actor="finance.lead", reason="bad debt", expected_due=less),
            f"is {followed.gross}, not {less}: it changed since you looked",
        ),
        (WriteOffRequest(actor="finance.lead", reason="  ", expected_due=followed.gross), "needs a reason"),
    ]
    for request, words in refusals:
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await followed.handle.execute_update(InvoiceToCash.write_off_invoice, request)
        assert words in str(refused.value.cause)

    status = await followed.status()
    assert status.stage == "awaiting_payment" and status.write_off_requested_by is None
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        invoice = await finance.get_invoice(followed.input.invoice_id)
    finally:
        await finance.aclose()
    assert not invoice.get("CreditNotes") and _money(invoice["AmountDue"], followed.gross.currency) == (
        followed.gross
    )
    await followed.handle.terminate("test done")


async def test_a_payment_landing_after_the_write_off_was_asked_drops_it_and_tells_finance(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)
    currency = followed.gross.currency
    await followed.seen("the invoice read", lambda s: s.amount_due == followed.gross)
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        # Paid in Xero after finance looked and before the run's next read: finance decided on the old amount.
        await finance.apply_payment(followed.input.invoice_id, Decimal("200.00"), reference="late BACS")
        accepted = await followed.handle.execute_update(
            InvoiceToCash.write_off_invoice,
            WriteOffRequest(actor="finance.lead", reason="bad debt", expected_due=followed.gross),
        )
        now_due = followed.gross - Money.of("200.00", currency)
        await followed.seen("the payment", lambda s: s.amount_due == now_due)
        invoice = await finance.get_invoice(followed.input.invoice_id)
    finally:
        await finance.aclose()

    assert accepted.amount_due == followed.gross
    assert not invoice.get("CreditNotes")
    status = await followed.status()
    assert status.stage == "awaiting_payment" and status.write_off_requested_by is None
    with ts_system.database.session() as session:
        (item,) = [
            e for e in list_exceptions(session, owner="finance") if e.workflow_id == followed.handle.id
        ]
        dropped = [
            e
            for e in audit_trail(session, key=f"xero:{followed.input.invoice_id}")
            if e.action == "write_off_dropped"
        ]
    assert f"{now_due} is due now" in item.reason and "finance.lead" in item.reason
    assert [e.detail["expected_due"] for e in dropped] == [str(followed.gross)]
    await followed.handle.terminate("test done")


async def test_the_shipped_write_off_signal_no_longer_writes_off_and_is_audited(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env)
    await followed.seen("the invoice read", lambda s: s.amount_due == followed.gross)

    await followed.handle.signal(
        InvoiceToCash.write_off, WriteOffRequest(actor="someone.claimed", reason="bad debt")
    )

    async def ignored() -> list[Any]:
        with ts_system.database.session() as session:
            return [
                e
                for e in audit_trail(session, key=followed.handle.id)
                if e.action == "write_off_signal_ignored"
            ]

    (entry,) = await eventually(ignored, what="the ignored signal in the audit")
    assert entry.detail["claimed_actor"] == "someone.claimed"
    status = await followed.status()
    assert status.stage == "awaiting_payment" and status.write_off_requested_by is None
    await followed.handle.terminate("test done")


@pytest.fixture
async def dev_tryton_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    # The wall clock: Tryton refuses invoices dated after its own today, which a skipped clock would pass.
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


@pytest.mark.tryton
async def test_overpayment_ends_paid_and_asks_finance_to_refund_the_excess(
    dev_env: WorkflowEnvironment, dev_tryton_system: System
) -> None:
    followed = await _follow_a_new_invoice(dev_tryton_system, dev_env, plan=EU_DEAL)
    tryton = dev_tryton_system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)
    excess = Money.of("90.00", "EUR")

    await register_overpayment(tryton, followed.input.invoice_id, followed.gross + excess, reference="SEPA")
    await followed.nudge()
    result = await followed.handle.result()

    assert result.outcome == "paid" and result.overpaid == excess
    assert result.summary.amount_paid == followed.gross
    status = await followed.status()
    assert status.stage == "overpaid" and status.overpaid == excess
    description = await followed.handle.describe()
    assert description.typed_search_attributes.get(sa.EXCEPTION_OWNER) == "finance"
    with dev_tryton_system.database.session() as session:
        (item,) = [
            e for e in list_exceptions(session, owner="finance") if e.workflow_id == followed.handle.id
        ]
    assert "overpaid by 90.00 EUR" in item.reason and "refund" in item.reason


async def test_an_invoice_the_erp_cannot_find_is_an_exception_and_the_run_keeps_checking(
    ts_system: System,
) -> None:
    missing = str(uuid.uuid4())
    handle = await ts_system.client.start_workflow(
        InvoiceToCash.run,
        InvoiceToCashInput(
            erp="xero",
            invoice_id=missing,
            invoice_number="INV-GONE",
            project_id="30100999",
            psa="kantata",
            crm="salesforce",
            opportunity_id="006000000000999AAA",
            account_id="001000000000999AAA",
            legal_entity="UK",
            poll_interval_seconds=DAY,
        ),
        id=workflow_id("xero", missing),
        task_queue=ts_system.task_queue,
    )

    def raised() -> list[Any]:
        with ts_system.database.session() as session:
            return [
                e for e in list_exceptions(session, owner="integration_support") if e.workflow_id == handle.id
            ]

    async def probe() -> list[Any]:
        return raised()

    (item,) = await eventually(probe, what="the unreadable invoice to be raised")
    assert "INV-GONE cannot be read from xero" in item.reason and "NotFound" in item.reason
    status = await handle.query(InvoiceToCash.status)
    assert status.stage == "awaiting_payment" and status.summary is None
    assert (await handle.describe()).close_time is None, "the run goes on checking"


async def test_a_run_handed_xeros_answer_to_the_post_pushes_it_without_reading_the_invoice_back(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    followed = await _follow_a_new_invoice(ts_system, ts_env, from_posting=True)
    erp = ts_system.connectors.erps.by_system("xero")

    # What the post answered is what reading the invoice back gives.
    assert followed.input.as_posted == ReceivablesSummary.of(await erp.get_invoice(followed.input.invoice_id))
    assert followed.input.as_posted.amount_due == followed.gross
    opportunity = await _crm_opportunity(ts_system, followed.input.opportunity_id)
    assert _money(opportunity["Amount_Due__c"], followed.gross.currency) == followed.gross
    scheduled = scheduled_activity_names(await followed.handle.fetch_history())
    assert "get_invoice_status" not in scheduled
    assert {"push_financials_to_psa", "push_receivables_to_crm"} <= set(scheduled)

    # From then on the run reads the invoice as before: a webhook's nudge makes it look at once.
    checks = (await followed.status()).checks
    await followed.nudge()

    async def read_again() -> bool:
        return (await followed.status()).checks > checks

    await eventually(read_again, what="the check after the nudge")
    assert "get_invoice_status" in scheduled_activity_names(await followed.handle.fetch_history())
