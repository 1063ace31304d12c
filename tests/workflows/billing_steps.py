"""Steps the TimeToBilling tests share: deals of each billing model, people and time in Kantata, finance's
approval, and reads of what the ERP and the ledger ended up holding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from temporalio.client import WorkflowHandle

from canonical import Money, Period, ProjectContract
from devstack.story import RATES, UK_DEAL, DealPlan
from ledger.records import ExceptionItem
from ledger.repository import get_contract, list_exceptions, postings_for, save_contract
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.starts import start_opportunity_to_project
from runs.time_to_billing import (
    ApprovalDecision,
    PendingApproval,
    TimeToBillingInput,
    TimeToBillingStatus,
    workflow_id,
)
from sandboxes.kantata.seed import Consultant, KantataSeeder, TimeLog
from sandboxes.salesforce.seed import SalesforceSeeder
from sandboxes.xero.seed import XeroFinanceUser
from workflows.time_to_billing import APPROVAL_STAGES, TimeToBilling

from ..support.system import System
from .helpers import eventually, query_or_none, stamp

# Sets the catalogue's fixed-fee and retainer services are staffed at (ServiceTemplate.rate_card_set).
SERVICE_RATE_CARD_SETS = ("Implementation", "Managed services")
BILLING_MODEL_LABELS = {
    "IMP-FF": "Fixed Fee",
    "MS-RET": "Retainer",
    "ADV-TM": "Time and Materials",
    "DIG-TM": "Time and Materials",
}


def kantata(system: System) -> KantataSeeder:
    return KantataSeeder.for_sandbox(system.settings.kantata_base_url)


async def deal_for(
    system: System, *, service_code: str, amount: Decimal, plan: DealPlan = UK_DEAL
) -> OpportunityToProjectResult:
    """A closed-won deal for a productised service, turned into a project by OpportunityToProject."""
    async with kantata(system) as seeder:
        effective = date(datetime.now(UTC).year - 1, 1, 1)
        for currency, rates in RATES.items():
            await seeder.rate_card(currency, {effective: rates})
            for title in SERVICE_RATE_CARD_SETS:
                await seeder.rate_card(currency, {effective: rates}, set_title=title)
    when = stamp()
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        deal = await salesforce.create_customer_deal(
            account_name=f"{plan.account_name} {service_code} {when}",
            country=plan.country,
            city=plan.city,
            street=plan.street,
            postal_code=plan.postal_code,
            currency=plan.currency,
            legal_entity=plan.entity,
            service_code=service_code,
            billing_model=BILLING_MODEL_LABELS[service_code],
            opportunity_name=f"{plan.account_name} {service_code} {when}",
            amount=amount,
        )
        await salesforce.close_won(deal.opportunity_id)
    await start_opportunity_to_project(
        system.client,
        system.settings,
        crm="salesforce",
        opportunity_id=deal.opportunity_id,
        notification_id=f"test-{deal.opportunity_id}",
    )
    handle = system.client.get_workflow_handle(
        o2p_id("salesforce", deal.opportunity_id), result_type=OpportunityToProjectResult
    )
    result: OpportunityToProjectResult = await handle.result()
    return result


async def staff(system: System, project_id: str, role: str) -> Consultant:
    """A new consultant in `role`, staffed on the project (unique, so no two tests share a person)."""
    who = stamp()
    async with kantata(system) as seeder:
        person = await seeder.consultant(f"Consultant {who}", f"c{who}@northwind.example", role)
        await seeder.add_to_project(project_id, [person])
    return person


async def unstaffed(system: System, role: str) -> Consultant:
    who = stamp()
    async with kantata(system) as seeder:
        return await seeder.consultant(f"Contractor {who}", f"x{who}@northwind.example", role)


async def log_approved(system: System, project_id: str, logs: Sequence[TimeLog]) -> list[str]:
    """Time logged and approved on timesheets, as a manager would: returns the entry ids in order."""
    async with kantata(system) as seeder:
        ids = await seeder.log_time(project_id, logs, parallel=1)
        await seeder.submit_and_approve(project_id, ids)
    return ids


async def unbilled_time(system: System, project_id: str, period: Period) -> list[str]:
    return [
        entry.id
        async for page in system.connectors.psa.time_entries(project_id, period)
        for entry in page.items
    ]


async def begin_billing(
    system: System, project_id: str, period: Period, **changes: Any
) -> WorkflowHandle[Any, Any]:
    """Start the billing run for the period as the feed poller would (its business key as the id)."""
    return await system.client.start_workflow(
        TimeToBilling.run,
        TimeToBillingInput(
            project_id=project_id,
            period=period.value,
            psa="kantata",
            **{"entities": tuple(system.settings.entities), "settle_seconds": 1, **changes},
        ),
        id=workflow_id(project_id, period.value),
        task_queue=system.task_queue,
    )


async def wait_for_stage(handle: WorkflowHandle[Any, Any], *stages: str) -> TimeToBillingStatus:
    async def probe() -> TimeToBillingStatus | None:
        status: TimeToBillingStatus | None = await query_or_none(handle, TimeToBilling.status)
        return status if status is not None and status.stage in stages else None

    found: TimeToBillingStatus = await eventually(probe, seconds=60, what=f"stage in {stages}")
    return found


async def as_seen(
    handle: WorkflowHandle[Any, Any], approver: str, reason: str | None = None
) -> ApprovalDecision:
    """A decision naming the waiting invoice's version and total, as finance reads them from the run."""
    pending: PendingApproval | None = await handle.query(TimeToBilling.pending_approval)
    assert pending is not None, "no invoice is waiting for approval"
    return ApprovalDecision(
        approver=approver, reason=reason, invoice_version=pending.version, expected_total=pending.total
    )


async def approve_when_asked(handle: WorkflowHandle[Any, Any], approver: str = "finance.lead") -> None:
    await wait_for_stage(handle, *APPROVAL_STAGES)
    await handle.execute_update(TimeToBilling.approve_invoice, await as_seen(handle, approver))


def contract_of(system: System, project_id: str) -> ProjectContract:
    with system.database.session() as session:
        contract = get_contract(session, psa="kantata", project_id=project_id)
    assert contract is not None
    return contract


def change_contract(system: System, project_id: str, **terms: Any) -> ProjectContract:
    """Commercial terms agreed after the deal (a cap, a late-work policy), recorded in the ledger."""
    current = contract_of(system, project_id)
    changed = current.model_copy(update={"contract": current.contract.model_copy(update=terms)})
    with system.database.session() as session:
        save_contract(session, contract=changed)
    return changed


def exceptions(system: System, **filters: Any) -> list[ExceptionItem]:
    """Billing's exceptions (other processes raise their own, e.g. OpportunityToProject about the PM)."""
    with system.database.session() as session:
        return list_exceptions(session, **{"process": "time_to_billing", **filters})


def posted_numbers(system: System, project_id: str) -> list[str | None]:
    with system.database.session() as session:
        return [p.number for p in postings_for(session, project_id=project_id)]


async def xero_invoices(system: System, reference: str) -> list[dict[str, Any]]:
    """Every Xero invoice carrying the reference, as Xero lists them (voided and archived included)."""
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        body = await finance.call("GET", "/Invoices", params={"where": f'Reference=="{reference}"'})
        # A listing leaves line items out (as Xero does); each invoice is read on its own for them.
        return [await finance.get_invoice(doc["InvoiceID"]) for doc in body["Invoices"]]
    finally:
        await finance.aclose()


def gbp(amount: str) -> Money:
    return Money.of(amount, "GBP")
