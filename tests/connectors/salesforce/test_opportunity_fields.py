"""The sandbox's Opportunity carries the standard fields a firm's scripts touch, computes the read-only ones
as Salesforce does and refuses writes to them; the not-to-exceed travels from the org to the contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest

from canonical import Money
from config import default_entities
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.mapping import OPPORTUNITY_FIELDS, MappingError
from connectors.salesforce.mapping import opportunity as opportunity_from_record
from domain.project_setup import project_spec
from sandboxes.salesforce.seed import SalesforceSeeder

from .conftest import CLIENT_ID, CLIENT_SECRET

DATA = "/services/data/v62.0"


@pytest.fixture
async def api(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A bare REST session, to see the statuses and error bodies a script would get."""
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        token = await http.post(
            "/services/oauth2/token",
            data={"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield http


async def test_a_script_can_edit_the_description_of_an_opportunity(
    seeder: SalesforceSeeder, api: httpx.AsyncClient
) -> None:
    deal = await seeder.create_customer_deal(account_name="Scripted Co", country="GB")
    notes = "Renewal discussed with the CFO.\n" * 1000

    response = await api.patch(
        f"{DATA}/sobjects/Opportunity/{deal.opportunity_id}", json={"Description": notes}
    )

    assert response.status_code == 204
    assert (await seeder.get("Opportunity", deal.opportunity_id))["Description"] == notes


async def test_the_standard_fields_are_written_and_read_back(seeder: SalesforceSeeder) -> None:
    deal = await seeder.create_customer_deal(account_name="Standard Co", country="GB")
    fields = {
        "Type": "New Customer",
        "LeadSource": "Partner Referral",
        "NextStep": "Send the statement of work",
        "ForecastCategoryName": "Commit",
        "Probability": 80,
    }

    await seeder.update("Opportunity", deal.opportunity_id, fields)
    record = await seeder.get("Opportunity", deal.opportunity_id)

    assert {name: record[name] for name in fields} == {**fields, "Probability": Decimal("80.0")}
    assert record["ExpectedRevenue"] == Decimal("20000.00")  # 25,000.00 at 80 %


async def test_entering_a_stage_sets_its_probability_and_forecast_category_unless_given(
    seeder: SalesforceSeeder,
) -> None:
    deal = await seeder.create_customer_deal(
        account_name="Stages Co", country="GB", amount=Decimal("1000.00")
    )
    created = await seeder.get("Opportunity", deal.opportunity_id)

    await seeder.update("Opportunity", deal.opportunity_id, {"StageName": "Negotiation/Review"})
    negotiating = await seeder.get("Opportunity", deal.opportunity_id)
    await seeder.update("Opportunity", deal.opportunity_id, {"StageName": "Closed Won", "Probability": 95})
    won = await seeder.get("Opportunity", deal.opportunity_id)

    assert (created["Probability"], created["ForecastCategoryName"]) == (Decimal("10.0"), "Pipeline")
    assert created["ExpectedRevenue"] == Decimal("100.00")
    assert negotiating["Probability"] == Decimal("90.0")
    assert negotiating["ExpectedRevenue"] == Decimal("900.00")
    # A probability set with the stage is kept; the forecast category still follows the stage.
    assert (won["Probability"], won["ForecastCategoryName"]) == (Decimal("95.0"), "Closed")


async def test_fiscal_period_follows_the_close_date(seeder: SalesforceSeeder) -> None:
    deal = await seeder.create_customer_deal(account_name="Fiscal Co", country="GB")

    await seeder.update("Opportunity", deal.opportunity_id, {"CloseDate": "2026-08-14"})
    [row] = await seeder.query(
        f"SELECT Fiscal, FiscalQuarter, FiscalYear FROM Opportunity WHERE Id = '{deal.opportunity_id}' "
        "AND FiscalYear = 2026"
    )

    assert (row["Fiscal"], row["FiscalQuarter"], row["FiscalYear"]) == ("2026 3", 3, 2026)


async def test_activity_fields_roll_up_from_the_opportunitys_tasks(seeder: SalesforceSeeder) -> None:
    deal = await seeder.create_customer_deal(account_name="Activity Co", country="GB")
    [done, _] = await seeder.create_records(
        "Task",
        [
            {"Subject": "Kick-off", "WhatId": deal.opportunity_id, "ActivityDate": "2026-03-02"},
            {"Subject": "Follow up", "WhatId": deal.opportunity_id, "ActivityDate": "2026-03-09"},
        ],
    )
    before = await seeder.get("Opportunity", deal.opportunity_id)

    await seeder.update("Task", done, {"Status": "Completed"})
    after = await seeder.get("Opportunity", deal.opportunity_id)

    assert (before["LastActivityDate"], before["HasOpenActivity"]) == (None, True)
    assert (after["LastActivityDate"], after["HasOpenActivity"]) == ("2026-03-02", True)
    assert after["HasOpportunityLineItem"] is False and after["IsDeleted"] is False


@pytest.mark.parametrize(
    "field, value",
    [
        ("ExpectedRevenue", 5000),
        ("FiscalYear", 2030),
        ("IsClosed", True),
        ("LastActivityDate", "2026-01-01"),
        ("HasOpportunityLineItem", True),
    ],
)
async def test_a_read_only_field_is_refused_as_salesforce_refuses_it(
    seeder: SalesforceSeeder, api: httpx.AsyncClient, field: str, value: object
) -> None:
    deal = await seeder.create_customer_deal(account_name="Read Only Co", country="GB")

    response = await api.patch(
        f"{DATA}/sobjects/Opportunity/{deal.opportunity_id}", json={"Description": "kept?", field: value}
    )

    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE" and error["fields"] == [field]
    assert error["message"].startswith(f"Unable to create/update fields: {field}.")
    # The whole write is refused, not just the read-only field.
    assert (await seeder.get("Opportunity", deal.opportunity_id))["Description"] is None


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"Probability": 101}, "NUMBER_OUTSIDE_VALID_RANGE"),
        ({"ForecastCategoryName": "Maybe"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        ({"NextStep": "x" * 256}, "STRING_TOO_LONG"),
        ({"Description": "x" * 32001}, "STRING_TOO_LONG"),
    ],
)
async def test_values_salesforce_would_not_store_are_refused(
    seeder: SalesforceSeeder, api: httpx.AsyncClient, fields: dict[str, object], code: str
) -> None:
    deal = await seeder.create_customer_deal(account_name="Invalid Co", country="GB")

    response = await api.patch(f"{DATA}/sobjects/Opportunity/{deal.opportunity_id}", json=fields)

    assert response.status_code == 400 and response.json()[0]["errorCode"] == code


async def test_describe_shows_the_standard_and_computed_fields(seeder: SalesforceSeeder) -> None:
    describe = await seeder.call("GET", "sobjects/Opportunity/describe")
    fields = {item["name"]: item for item in describe["fields"]}

    assert (fields["Description"]["type"], fields["Description"]["length"]) == ("textarea", 32000)
    assert (fields["Probability"]["type"], fields["Probability"]["precision"]) == ("percent", 3)
    assert [v["value"] for v in fields["ForecastCategoryName"]["picklistValues"]] == [
        "Omitted",
        "Pipeline",
        "Best Case",
        "Commit",
        "Closed",
    ]
    assert [v["value"] for v in fields["Type"]["picklistValues"]][-1] == "New Customer"
    assert fields["LeadSource"]["restrictedPicklist"] is False
    for name in ("ExpectedRevenue", "Fiscal", "FiscalQuarter", "FiscalYear", "LastActivityDate"):
        assert (fields[name]["createable"], fields[name]["updateable"]) == (False, False), name
    cap = fields["Not_To_Exceed__c"]
    assert (cap["type"], cap["precision"], cap["scale"], cap["custom"], cap["updateable"]) == (
        "currency",
        18,
        2,
        True,
        True,
    )


async def test_the_not_to_exceed_set_in_the_org_is_the_opportunitys_cap_in_its_currency(
    seeder: SalesforceSeeder, api: httpx.AsyncClient, connector: SalesforceConnector
) -> None:
    deal = await seeder.create_customer_deal(
        account_name="Capped Co",
        country="GB",
        amount=Decimal("2000.00"),
        billing_model="Time and Materials",
        service_code="ADV-TM",
    )
    response = await api.patch(
        f"{DATA}/sobjects/Opportunity/{deal.opportunity_id}", json={"Not_To_Exceed__c": 2000}
    )
    assert response.status_code == 204
    assert "Not_To_Exceed__c" in OPPORTUNITY_FIELDS

    opportunity = await connector.get_opportunity(deal.opportunity_id)
    spec = project_spec("salesforce", opportunity, next(e for e in default_entities() if e.code == "UK"))

    assert opportunity.not_to_exceed == Money.of("2000.00", "GBP")
    assert spec.contract.not_to_exceed == Money.of("2000.00", "GBP")


async def test_an_opportunity_without_a_not_to_exceed_is_uncapped(
    seeder: SalesforceSeeder, connector: SalesforceConnector
) -> None:
    deal = await seeder.create_customer_deal(account_name="Open Co", country="NL", currency="EUR")

    opportunity = await connector.get_opportunity(deal.opportunity_id)

    assert opportunity.not_to_exceed is None and opportunity.currency == "EUR"


async def test_the_cap_is_read_in_the_opportunitys_currency(
    seeder: SalesforceSeeder, connector: SalesforceConnector
) -> None:
    deal = await seeder.create_customer_deal(
        account_name="Euro Co", country="NL", extra_fields={"Not_To_Exceed__c": Decimal("12500.50")}
    )

    opportunity = await connector.get_opportunity(deal.opportunity_id)

    assert opportunity.not_to_exceed == Money.of("12500.50", "EUR")


def test_a_cap_that_arrives_as_a_float_is_refused_naming_its_field() -> None:
    record = {
        "Id": "0068d0000000001AAA",
        "Name": "Float Co",
        "StageName": "Closed Won",
        "CurrencyIsoCode": "GBP",
        "Not_To_Exceed__c": 2000.0,
        "Account": {"Id": "0018d0000000001AAA", "Name": "Float Co"},
    }

    with pytest.raises(MappingError) as raised:
        opportunity_from_record(record)

    assert raised.value.field == "Not_To_Exceed__c"
