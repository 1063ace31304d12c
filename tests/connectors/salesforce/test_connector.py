"""SalesforceConnector behaviour beyond the CRM contract: how write-back upserts, what it costs, settings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from canonical import CrmTask, CrmWriteBack, InvoiceState, Money, ReceivablesSummary
from config import Settings
from connectors.errors import Rejected
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.auth import JwtBearerAuth
from sandboxes.salesforce.seed import SalesforceSeeder, SeedError, close_won, create_customer_deal


async def test_first_write_back_stamps_the_ps_sync_keys_with_the_records_own_ids(
    connector: SalesforceConnector, seeder: SalesforceSeeder
) -> None:
    deal = await seeder.create_customer_deal(account_name="Stamped Ltd", country="GB")

    await connector.write_back(
        CrmWriteBack(
            opportunity_id=deal.opportunity_id, account_id=deal.account_id, erp="xero", erp_customer_id="XC-1"
        )
    )

    opportunity = await seeder.get("Opportunity", deal.opportunity_id)
    account = await seeder.get("Account", deal.account_id)
    assert opportunity["PSSync_Key__c"] == deal.opportunity_id
    assert account["PSSync_Account_Key__c"] == deal.account_id
    assert (opportunity["ERP_System__c"], account["ERP_Customer_Id__c"]) == ("xero", "XC-1")


async def test_later_write_backs_are_one_composite_upsert_call(
    connector: SalesforceConnector, seeder: SalesforceSeeder
) -> None:
    deal = await seeder.create_customer_deal(account_name="Cheap Calls", country="GB")
    write_back = CrmWriteBack(
        opportunity_id=deal.opportunity_id,
        account_id=deal.account_id,
        erp="xero",
        erp_customer_id="XC-2",
        psa_project_id="P-2",
    )
    await connector.write_back(write_back)
    assert connector.client.api_usage is not None
    before = connector.client.api_usage.used

    await connector.write_back(write_back.model_copy(update={"sync_status": "in sync"}))

    assert connector.client.api_usage.used == before + 1
    assert (await seeder.get("Opportunity", deal.opportunity_id))["Sync_Status__c"] == "in sync"


async def test_update_receivables_refuses_an_invoice_in_another_currency(
    connector: SalesforceConnector, seeder: SalesforceSeeder
) -> None:
    deal = await seeder.create_customer_deal(account_name="Euro Deal", country="NL")
    summary = ReceivablesSummary(
        invoice_id="i-1",
        invoice_number="INV-1",
        state=InvoiceState.AWAITING_PAYMENT,
        total=Money.of("10", "GBP"),
        amount_due=Money.of("10", "GBP"),
        amount_paid=Money.zero("GBP"),
        amount_credited=Money.zero("GBP"),
    )

    with pytest.raises(Rejected) as raised:
        await connector.update_receivables(
            opportunity_id=deal.opportunity_id, account_id=deal.account_id, summary=summary
        )

    assert raised.value.field_errors[0].field == "CurrencyIsoCode"
    assert (await seeder.get("Opportunity", deal.opportunity_id))["Invoice_Number__c"] is None


async def test_task_key_with_reserved_url_characters_round_trips(
    connector: SalesforceConnector, seeder: SalesforceSeeder
) -> None:
    deal = await seeder.create_customer_deal(account_name="Odd Keys", country="GB")
    task = CrmTask(
        external_key="dunning:xero:INV/2024#7?:stage 1",
        related_to_id=deal.account_id,
        subject="Chase",
        description="-",
        due_date=date(2025, 1, 31),
    )

    task_id = await connector.create_task(task)

    assert await connector.create_task(task) == task_id
    assert (await seeder.get("Task", task_id))["PSSync_Task_Key__c"] == task.external_key


def test_connector_needs_api_v61_or_later_for_update_only_upserts() -> None:
    with pytest.raises(ValueError, match=r"v61\.0 or later"):
        SalesforceConnector(
            base_url="http://127.0.0.1:1", client_id="c", client_secret="s", api_version="v60.0"
        )


def test_malformed_api_version_is_refused() -> None:
    with pytest.raises(ValueError, match=r"like 'v62\.0'"):
        SalesforceConnector(base_url="http://127.0.0.1:1", client_id="c", client_secret="s", api_version="62")


async def test_from_settings_uses_client_credentials_by_default(sandbox_url: str) -> None:
    connector = SalesforceConnector.from_settings(Settings(salesforce_base_url=sandbox_url))
    try:
        limits = await connector.client.limits()
    finally:
        await connector.aclose()

    assert "DailyApiRequests" in limits


async def test_from_settings_switches_to_jwt_bearer_when_a_key_is_configured(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path = tmp_path / "salesforce.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )

    connector = SalesforceConnector.from_settings(
        Settings(
            salesforce_jwt_private_key_path=str(key_path),
            salesforce_jwt_username="integration@northwind.example",
        )
    )
    await connector.aclose()

    assert isinstance(connector.client.auth, JwtBearerAuth)


async def test_seed_functions_create_a_deal_and_close_it_won(
    sandbox_url: str, seeder: SalesforceSeeder
) -> None:
    ids = await create_customer_deal(
        sandbox_url, account_name="Module Level", country="IE", amount=Decimal("15000.50")
    )
    await close_won(sandbox_url, ids.opportunity_id)

    record = await seeder.get("Opportunity", ids.opportunity_id)
    assert (record["IsWon"], record["CurrencyIsoCode"], record["Legal_Entity__c"]) == (True, "GBP", "UK")
    assert record["Amount"] == Decimal("15000.50")


async def test_seeding_an_invalid_deal_reports_the_orgs_reason(seeder: SalesforceSeeder) -> None:
    with pytest.raises(SeedError, match="INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"):
        await seeder.create_customer_deal(account_name="Bad", country="GB", billing_model="Barter")
    async with httpx.AsyncClient(base_url=seeder.base_url) as control:
        stats = (await control.get("/_sandbox/stats")).json()
    assert stats["outbound"]["pending"] == 0
    assert await seeder.count("FROM Account WHERE Name = 'Bad'") == 0
