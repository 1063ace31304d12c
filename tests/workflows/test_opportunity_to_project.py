"""OpportunityToProject on real Temporal servers, against the Salesforce, Kantata and Xero sandboxes."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from canonical import Account, BillingModel, ExceptionOwner, Money, ProjectStatus
from devstack.story import RATES
from ledger.repository import get_contract, get_link, link_ids, list_exceptions
from ledger.vocab import LinkStatus
from runs import search_attributes as sa
from runs.opportunity_to_project import OpportunityToProjectResult, RetryRequest, workflow_id
from runs.starts import start_opportunity_to_project
from sandboxes.faults import FaultConfig
from sandboxes.kantata.seed import KantataSeeder
from sandboxes.salesforce.seed import DealIds, SalesforceSeeder
from sandboxes.xero.seed import XeroFinanceUser
from workflows.opportunity_to_project import OpportunityToProject

from ..support.system import System, set_faults
from .conftest import prepared_story
from .helpers import eventually, stamp


async def _deal(system: System, **fields: Any) -> DealIds:
    """A UK deal, closed won; `fields` override SalesforceSeeder.create_customer_deal's."""
    deal: dict[str, Any] = {
        "account_name": f"Northwind {stamp()}",
        "country": "GB",
        "service_code": "ADV-TM",
        "billing_model": "Time and Materials",
        "project_manager": "Dana Whitfield",
        **fields,
    }
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        ids = await salesforce.create_customer_deal(**deal)
        await salesforce.close_won(ids.opportunity_id)
    return ids


async def _notify(system: System, deal: DealIds) -> WorkflowHandle[Any, OpportunityToProjectResult]:
    """What the ingress does on a Salesforce outbound message: signal-with-start by business key."""
    await start_opportunity_to_project(
        system.client,
        system.settings,
        crm="salesforce",
        opportunity_id=deal.opportunity_id,
        notification_id=f"note-{uuid.uuid4().hex[:8]}",
    )
    return system.client.get_workflow_handle(
        workflow_id("salesforce", deal.opportunity_id), result_type=OpportunityToProjectResult
    )


async def _parked(handle: WorkflowHandle[Any, Any]) -> Any:
    async def probe() -> Any:
        status = await handle.query(OpportunityToProject.status)
        return status if status.stage == "awaiting_fix" else None

    return await eventually(probe, what="the run to park the deal")


def _exceptions_of(system: System, handle: WorkflowHandle[Any, Any], owner: str) -> list[Any]:
    with system.database.session() as session:
        return [e for e in list_exceptions(session, owner=owner) if e.workflow_id == handle.id]


async def test_incomplete_deal_names_every_gap_for_sales_ops_and_the_same_run_goes_on_at_the_next_notice(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    deal = await _deal(ts_system, omit=("Tax_Code__c", "Service_Code__c"), contact_last_name=None)

    handle = await _notify(ts_system, deal)
    status = await _parked(handle)

    assert status.missing_fields == ("tax_code", "bill_to_contact", "service_code")
    assert status.exception_owner == ExceptionOwner.SALES_OPS
    description = await handle.describe()
    assert description.typed_search_attributes.get(sa.EXCEPTION_OWNER) == "sales_ops"
    assert description.typed_search_attributes.get(sa.SYNC_STAGE) == "awaiting_fix"
    (exception,) = _exceptions_of(ts_system, handle, "sales_ops")
    assert "tax_code; bill_to_contact; service_code" in exception.reason
    assert exception.record["missing"] == ["tax_code", "bill_to_contact", "service_code"]

    # Sales ops completes the deal in Salesforce; the CRM notifies again.
    async with SalesforceSeeder(ts_system.settings.salesforce_base_url) as salesforce:
        (contact_id,) = await salesforce.create_records(
            "Contact", [{"LastName": "Okafor", "FirstName": "Ada", "AccountId": deal.account_id}]
        )
        await salesforce.update(
            "Opportunity",
            deal.opportunity_id,
            {"Tax_Code__c": "OUTPUT2", "Service_Code__c": "ADV-TM", "Bill_To_Contact__c": contact_id},
        )
    await _notify(ts_system, deal)
    result = await handle.result()

    assert result.project_id and result.erp == "xero"
    assert (await handle.describe()).run_id == description.run_id, "the same run carried on"
    status = await handle.query(OpportunityToProject.status)
    assert status.stage == "done" and status.notifications_seen == 2 and status.missing_fields == ()


async def test_retry_signal_reads_the_fixed_deal_again_and_a_manager_unknown_to_the_psa_goes_to_pmo(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    deal = await _deal(ts_system, service_code="FREE-TEXT", project_manager="Priya Shah")

    handle = await _notify(ts_system, deal)
    status = await _parked(handle)
    assert status.missing_fields == ("service_code ('FREE-TEXT' is not in the service catalogue)",)

    async with SalesforceSeeder(ts_system.settings.salesforce_base_url) as salesforce:
        await salesforce.update("Opportunity", deal.opportunity_id, {"Service_Code__c": "ADV-TM"})
    await handle.signal(OpportunityToProject.retry, RetryRequest(actor="sales.ops@northwind.example"))
    result = await handle.result()

    assert result.billing_model == BillingModel.TIME_AND_MATERIALS
    assert result.project_manager != "Priya Shah"
    (pmo,) = _exceptions_of(ts_system, handle, "pmo")
    assert "'Priya Shah'" in pmo.reason and result.project_id in pmo.reason
    project = await ts_system.connectors.psa.get_project(result.project_id)
    assert project.status == ProjectStatus.ACTIVE, "an unknown manager does not hold up the project"


async def test_fixed_fee_deal_gets_template_tasks_milestone_billing_schedule_rate_card_set_and_manager(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        card_id = await kantata.rate_card(
            "GBP", {date(datetime.now(UTC).year - 1, 1, 1): RATES["GBP"]}, set_title="Implementation"
        )
    deal = await _deal(
        ts_system,
        service_code="IMP-FF",
        billing_model="Fixed Fee",
        amount=Decimal("50000.00"),
        project_manager="dana whitfield",
    )

    result = await (await _notify(ts_system, deal)).result()

    project = await ts_system.connectors.psa.get_project(result.project_id)
    assert [t.name for t in project.tasks] == ["Design", "Build", "Test", "Go-live"]
    assert {m.name: m.amount for m in project.milestones} == {
        "Design sign-off": Money.of("20000.00", "GBP"),
        "Go-live": Money.of("30000.00", "GBP"),
    }
    assert project.billing_model == BillingModel.FIXED_FEE
    assert project.rate_card_id == card_id
    assert project.project_manager == "Dana Whitfield"
    assert result.project_manager == "Dana Whitfield"
    with ts_system.database.session() as session:
        contract = get_contract(session, psa="kantata", project_id=result.project_id)
    assert contract is not None
    assert [(c.milestone, c.amount) for c in contract.contract.billing_schedule] == [
        ("Design sign-off", Money.of("20000.00", "GBP")),
        ("Go-live", Money.of("30000.00", "GBP")),
    ]
    assert contract.contract.not_to_exceed == Money.of("50000.00", "GBP")


async def test_service_whose_rate_card_set_is_missing_parks_with_pmo_before_any_project_exists(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    deal = await _deal(ts_system, service_code="MS-RET", billing_model="Retainer", amount=Decimal("24000.00"))
    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        sets = await kantata.every("/rate_card_sets")
    if any(s["title"] == "Managed services" for s in sets):
        pytest.skip("another test in this session created the 'Managed services' rate card set")

    handle = await _notify(ts_system, deal)
    status = await _parked(handle)

    assert status.exception_owner == ExceptionOwner.PMO and status.project_id is None
    assert status.waiting_because is not None and "'Managed services'" in status.waiting_because
    assert await ts_system.connectors.psa.find_project(f"salesforce:{deal.opportunity_id}") is None

    async with KantataSeeder.for_sandbox(ts_system.settings.kantata_base_url) as kantata:
        await kantata.rate_card(
            "GBP", {date(datetime.now(UTC).year - 1, 1, 1): RATES["GBP"]}, set_title="Managed services"
        )
    await handle.signal(OpportunityToProject.retry, RetryRequest(actor="pmo"))
    result = await handle.result()

    with ts_system.database.session() as session:
        contract = get_contract(session, psa="kantata", project_id=result.project_id)
    assert contract is not None and contract.contract.retainer_amount == Money.of("2000.00", "GBP")


async def _booked_by_finance(system: System, name: str, *, number: str) -> dict[str, Any]:
    """A Xero contact finance created by hand."""
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        return await finance.create_customer(name, contact_number=number)
    finally:
        await finance.aclose()


async def test_customer_already_in_the_erp_under_the_crm_account_id_is_linked_not_created_again(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    deal = await _deal(ts_system)
    contact = await _booked_by_finance(ts_system, f"Northwind Trading {stamp()}", number=deal.account_id)

    result = await (await _notify(ts_system, deal)).result()

    assert result.erp_customer_id == contact["ContactID"]
    assert result.customer_created is False
    with ts_system.database.session() as session:
        link = get_link(
            session, entity="customer", canonical_key=f"salesforce:{deal.account_id}", system="xero"
        )
    assert link is not None and link.external_id == contact["ContactID"]


async def test_a_customer_in_the_crosswalk_is_used_before_any_erp_lookup_or_create(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    deal = await _deal(ts_system)
    # Booked by hand under a legacy number and another name: only the crosswalk can tell it is this account
    # (a Xero lookup by the CRM account id finds nothing, and the name does not match).
    contact = await _booked_by_finance(ts_system, f"NW Legacy {stamp()}", number=f"LEGACY-{stamp()}")
    with ts_system.database.session() as session:
        link_ids(
            session,
            entity="customer",
            canonical_key=f"salesforce:{deal.account_id}",
            system="xero",
            external_id=contact["ContactID"],
        )

    result = await (await _notify(ts_system, deal)).result()

    assert result.erp_customer_id == contact["ContactID"] and result.customer_created is False
    xero = ts_system.connectors.erps.by_system("xero")
    assert await xero.find_customer(Account(id=deal.account_id, name="-")) is None, "no customer was created"


async def test_duplicate_looking_customer_is_an_exception_for_finance_not_a_second_customer(
    ts_system: System,
) -> None:
    await prepared_story(ts_system)
    name = f"Initrode Ltd {stamp()}"
    deal = await _deal(ts_system, account_name=name, tax_number="GB 987 6543 21")
    finance = XeroFinanceUser.from_settings(ts_system.settings)
    try:
        # Finance typed the company in by hand, under another number.
        body = await finance.call(
            "PUT",
            "/Contacts",
            {"Contacts": [{"Name": name.upper(), "TaxNumber": "GB987654321", "ContactNumber": "LEGACY-42"}]},
            idempotency_key=str(uuid.uuid4()),
        )
    finally:
        await finance.aclose()
    existing_id = body["Contacts"][0]["ContactID"]

    handle = await _notify(ts_system, deal)
    status = await _parked(handle)

    assert status.stage == "awaiting_fix" and status.exception_owner == ExceptionOwner.FINANCE
    assert status.erp_customer_id is None and status.project_id is None
    (exception,) = _exceptions_of(ts_system, handle, "finance")
    assert existing_id in exception.reason and "DuplicateCustomer" in exception.reason
    assert exception.record["details"][0]["candidates"][0]["id"] == existing_id
    xero = ts_system.connectors.erps.by_system("xero")
    assert [c.id for c in await xero.find_customers_by_name_and_tax_number(name, "GB987654321")] == [
        existing_id
    ]

    # Naming a customer that is not one of the candidates is refused, and the deal stays parked.
    await handle.signal(OpportunityToProject.retry, RetryRequest(actor="finance", erp_customer_id="nope"))
    await eventually(
        lambda: _retried_and_parked(handle, retries=1), what="the refused link to park the deal again"
    )

    await handle.signal(
        OpportunityToProject.retry, RetryRequest(actor="finance", erp_customer_id=existing_id)
    )
    result = await handle.result()

    assert result.erp_customer_id == existing_id and result.customer_created is False


async def _retried_and_parked(handle: WorkflowHandle[Any, Any], *, retries: int) -> bool:
    status = await handle.query(OpportunityToProject.status)
    return (
        status.retries_requested == retries
        and status.stage == "awaiting_fix"
        and status.waiting_because is not None
        and "not linked" in status.waiting_because
    )


async def test_write_back_failing_for_good_puts_the_project_on_hold_and_the_crosswalk_says_so(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    await prepared_story(dev_system)
    deal = await _deal(dev_system)
    kantata = dev_system.sandboxes.kantata.url
    # Kantata answers 503 to project calls until the deal is gone, so the run is caught mid-way.
    await set_faults(kantata, FaultConfig(server_error_rate=1.0, path_prefixes=("/api/v1/workspaces",)))

    handle = await _notify(dev_system, deal)

    async def creating_project() -> bool:
        return (await handle.query(OpportunityToProject.status)).stage == "creating_project"

    await eventually(creating_project, what="the run to reach project creation")
    async with SalesforceSeeder(dev_system.settings.salesforce_base_url) as salesforce:
        await salesforce.call("DELETE", f"sobjects/Opportunity/{deal.opportunity_id}")
    await set_faults(kantata, FaultConfig())

    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()

    assert isinstance(failed.value.cause, ApplicationError) and failed.value.cause.type == "Compensated"
    status = await handle.query(OpportunityToProject.status)
    assert status.stage == "compensated" and status.project_id is not None
    project = await dev_system.connectors.psa.get_project(status.project_id)
    assert project.status == ProjectStatus.ON_HOLD
    with dev_system.database.session() as session:
        link = get_link(
            session, entity="project", canonical_key=f"salesforce:{deal.opportunity_id}", system="kantata"
        )
    assert link is not None and link.external_id == status.project_id
    assert link.status == LinkStatus.ON_HOLD
    assert link.note is not None and "could not finish setting up this deal" in link.note
    assert "NotFound" in link.note and deal.opportunity_id in link.note
    (failure,) = _exceptions_of(dev_system, handle, "integration_support")
    assert failure.record["project_status"] == "on_hold"
