"""Fixtures: the Salesforce sandbox served over HTTP, the real connector, and a vendor-API probe."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from canonical import Money
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.mapping import INVOICE_STATUS_LABELS
from sandboxes.salesforce.app import create_app
from sandboxes.salesforce.config import SalesforceSandboxConfig
from sandboxes.salesforce.seed import SalesforceSeeder
from sandboxes.serve import ServedApp, serve_in_thread

from ..contract.crm_contract import ReceivablesView, SeededDeal, TaskView

CLIENT_ID = "dev-salesforce-client"
CLIENT_SECRET = "dev-salesforce-secret"
UNKNOWN_OPPORTUNITY_ID = "0068d0000zzzzzzAAA"
# Fields the contract names in `missing`, as this org spells them.
CANONICAL_TO_FIELD = {
    "tax_code": "Tax_Code__c",
    "billing_model": "Billing_Model__c",
    "service_code": "Service_Code__c",
    "legal_entity": "Legal_Entity__c",
}


def quick_config(**overrides: Any) -> SalesforceSandboxConfig:
    """A sandbox whose outbound retries take milliseconds, not hours."""
    settings: dict[str, Any] = {
        "outbound_retry_base_seconds": 0.05,
        "outbound_retry_max_seconds": 0.4,
        "outbound_poll_seconds": 0.02,
        "outbound_timeout_seconds": 2.0,
    }
    settings.update(overrides)
    return SalesforceSandboxConfig(**settings)


@contextmanager
def serve(config: SalesforceSandboxConfig) -> Iterator[ServedApp]:
    served = serve_in_thread(create_app(config))
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture(scope="session")
def shared_sandbox() -> Iterator[ServedApp]:
    with serve(quick_config()) as served:
        yield served


@pytest.fixture
def sandbox_url(shared_sandbox: ServedApp) -> Iterator[str]:
    yield shared_sandbox.url
    # Each test leaves a clean org behind: records, faults, limits, outbound queue and endpoint.
    with httpx.Client(base_url=shared_sandbox.url) as control:
        control.post("/_sandbox/reset").raise_for_status()
        control.put(
            "/_sandbox/limits", json={"enforce_api_limit": False, "daily_api_limit": 100_000}
        ).raise_for_status()
        control.put("/_sandbox/outbound/endpoint", json={"url": None}).raise_for_status()


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., ServedApp]]:
    """Extra sandboxes with their own settings, stopped after the test."""
    started: list[ServedApp] = []

    def start(**overrides: Any) -> ServedApp:
        served = serve_in_thread(create_app(quick_config(**overrides)))
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop()


@pytest.fixture
async def connector(sandbox_url: str) -> AsyncIterator[SalesforceConnector]:
    crm = SalesforceConnector(base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield crm
    await crm.aclose()


@pytest.fixture
async def seeder(sandbox_url: str) -> AsyncIterator[SalesforceSeeder]:
    async with SalesforceSeeder(sandbox_url) as session:
        yield session


@pytest.fixture
async def control(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        yield client


def _money(record: dict[str, Any], name: str, currency: str | None) -> Money | None:
    value = record.get(name)
    if value is None or currency is None:
        return None
    assert isinstance(value, Decimal), f"{name} arrived as {type(value).__name__}, not an exact number"
    return Money(amount=value, currency=currency)


@dataclass
class SalesforceProbe:
    """The contract's CrmProbe, speaking Salesforce's REST API through the seed script."""

    seeder: SalesforceSeeder

    async def seed_deal(
        self,
        *,
        account_name: str,
        country: str,
        amount: Money,
        account_id: str | None = None,
        closed_won: bool = False,
        missing: Sequence[str] = (),
    ) -> SeededDeal:
        ids = await self.seeder.create_customer_deal(
            account_name=account_name,
            country=country,
            amount=amount.amount,
            currency=amount.currency,
            account_id=account_id,
            omit=[CANONICAL_TO_FIELD[name] for name in missing],
            stage="Closed Won" if closed_won else "Prospecting",
        )
        return SeededDeal(
            opportunity_id=ids.opportunity_id, account_id=ids.account_id, contact_id=ids.contact_id
        )

    async def unknown_opportunity_id(self) -> str:
        return UNKNOWN_OPPORTUNITY_ID

    async def count_opportunities(self) -> int:
        return await self.seeder.count("FROM Opportunity")

    async def count_accounts(self) -> int:
        return await self.seeder.count("FROM Account")

    async def receivables(self, opportunity_id: str, account_id: str) -> ReceivablesView:
        opportunity = await self.seeder.get("Opportunity", opportunity_id)
        account = await self.seeder.get("Account", account_id)
        currency = opportunity["CurrencyIsoCode"]
        labels = {label: state for state, label in INVOICE_STATUS_LABELS.items()}
        status = opportunity["Invoice_Status__c"]
        return ReceivablesView(
            invoice_number=opportunity["Invoice_Number__c"],
            invoice_state=labels[status] if status else None,
            amount_invoiced=_money(opportunity, "Amount_Invoiced__c", currency),
            amount_paid=_money(opportunity, "Amount_Paid__c", currency),
            amount_due=_money(opportunity, "Amount_Due__c", currency),
            account_open=_money(account, "Receivables_Open__c", account["Receivables_Currency__c"]),
            account_overdue=_money(account, "Receivables_Overdue__c", account["Receivables_Currency__c"]),
        )

    async def task(self, task_id: str) -> TaskView:
        record = await self.seeder.get("Task", task_id)
        return TaskView(
            id=record["Id"],
            subject=record["Subject"],
            description=record["Description"],
            related_to_id=record["WhatId"],
            due_date=date.fromisoformat(record["ActivityDate"]) if record["ActivityDate"] else None,
            completed=record["Status"] == "Completed",
        )

    async def count_tasks(self, external_key: str) -> int:
        escaped = external_key.replace("\\", "\\\\").replace("'", "\\'")
        return await self.seeder.count(f"FROM Task WHERE PSSync_Task_Key__c = '{escaped}'")

    async def complete_task(self, task_id: str) -> None:
        await self.seeder.update("Task", task_id, {"Status": "Completed"})


@pytest.fixture
def crm(connector: SalesforceConnector) -> SalesforceConnector:
    return connector


@pytest.fixture
def crm_probe(seeder: SalesforceSeeder) -> SalesforceProbe:
    return SalesforceProbe(seeder)
