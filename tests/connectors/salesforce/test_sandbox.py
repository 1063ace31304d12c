"""The sandbox as a Salesforce stand-in: versions, SOQL subset, describe, persistence, control, __main__."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sandboxes.salesforce.seed import SalesforceSeeder, SeedError
from sandboxes.serve import free_port

from .conftest import quick_config, serve


async def test_versions_resource_needs_no_session_and_lists_the_orgs_versions(sandbox_url: str) -> None:
    async with httpx.AsyncClient(base_url=sandbox_url) as http:
        response = await http.get("/services/data/")

    versions = response.json()
    assert response.status_code == 200
    assert versions[-1] == {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"}
    assert "sforce-limit-info" not in response.headers


async def test_unknown_api_version_is_not_found(seeder: SalesforceSeeder) -> None:
    seeder.data = "/services/data/v99.0"

    with pytest.raises(SeedError) as raised:
        await seeder.call("GET", "limits")

    assert raised.value.status == 404


async def test_soql_nests_parent_relationship_fields(seeder: SalesforceSeeder) -> None:
    deal = await seeder.create_customer_deal(account_name="Parent Co", country="GB")

    [row] = await seeder.query(
        "SELECT Id, Account.Name, Bill_To_Contact__r.Email FROM Opportunity "
        f"WHERE Id = '{deal.opportunity_id}'"
    )

    assert row["Account"]["Name"] == "Parent Co"
    assert row["Account"]["attributes"]["type"] == "Account"
    assert row["Bill_To_Contact__r"]["Email"] == "alex.morgan@example.com"


async def test_soql_missing_parent_is_null(seeder: SalesforceSeeder) -> None:
    deal = await seeder.create_customer_deal(account_name="No Contact", country="GB", contact_last_name=None)

    [row] = await seeder.query(
        f"SELECT Bill_To_Contact__r.Email FROM Opportunity WHERE Id = '{deal.opportunity_id}'"
    )

    assert row["Bill_To_Contact__r"] is None


async def test_soql_filters_with_in_and_comparisons_then_orders_and_limits(seeder: SalesforceSeeder) -> None:
    await seeder.create_records(
        "Account",
        [
            {"Name": name, "BillingCountryCode": country, "Receivables_Open__c": open_amount}
            for name, country, open_amount in [
                ("A", "GB", 10),
                ("B", "NL", 30),
                ("C", "DE", 20),
                ("D", "GB", None),
            ]
        ],
    )

    rows = await seeder.query(
        "SELECT Name FROM Account WHERE BillingCountryCode IN ('NL', 'DE', 'GB') "
        "AND Receivables_Open__c >= 15 "
        "ORDER BY Receivables_Open__c DESC LIMIT 5"
    )
    nulls_first = await seeder.query("SELECT Name FROM Account ORDER BY Receivables_Open__c ASC")

    assert [row["Name"] for row in rows] == ["B", "C"]
    assert nulls_first[0]["Name"] == "D"


async def test_soql_text_comparison_ignores_case_and_escapes_quotes(seeder: SalesforceSeeder) -> None:
    await seeder.create_records("Account", [{"Name": "O'Brien & Sons"}])

    rows = await seeder.query("SELECT Name FROM Account WHERE Name = 'o\\'brien & SONS'")

    assert [row["Name"] for row in rows] == ["O'Brien & Sons"]


@pytest.mark.parametrize(
    ("soql", "code", "words"),
    [
        ("SELECT Id FROM Account GROUP BY Name", "MALFORMED_QUERY", "GROUP"),
        ("SELECT Id FROM Account WHERE (Name = 'x')", "MALFORMED_QUERY", "parenthesised"),
        ("SELECT COUNT(Id) FROM Account", "MALFORMED_QUERY", "COUNT"),
        ("SELECT Id FROM Invoice__c", "INVALID_TYPE", "Invoice__c"),
        ("SELECT Id FROM Account WHERE Receivables_Open__c = '5'", "INVALID_QUERY_FILTER_OPERATOR", "double"),
        ("SELECT Id FROM Account WHERE Name = 5", "INVALID_QUERY_FILTER_OPERATOR", "enclosed in quotes"),
        ("SELECT Id, Owner.Username.Email FROM Account", "MALFORMED_QUERY", "one parent relationship"),
        ("SELECT Id FROM Account LIMIT many", "MALFORMED_QUERY", "LIMIT"),
    ],
)
async def test_soql_outside_the_subset_names_the_problem(
    seeder: SalesforceSeeder, soql: str, code: str, words: str
) -> None:
    with pytest.raises(SeedError) as raised:
        await seeder.query(soql)

    assert raised.value.status == 400
    assert code in str(raised.value.body) and words in str(raised.value.body)


async def test_describe_lists_the_integration_fields(seeder: SalesforceSeeder) -> None:
    describe = await seeder.call("GET", "sobjects/Opportunity/describe")

    fields = {item["name"]: item for item in describe["fields"]}
    assert describe["keyPrefix"] == "006"
    assert fields["PSSync_Key__c"]["externalId"] is True
    assert [value["value"] for value in fields["Billing_Model__c"]["picklistValues"]] == [
        "Time and Materials",
        "Fixed Fee",
        "Retainer",
    ]
    assert fields["IsWon"]["updateable"] is False


async def test_collections_create_without_all_or_none_keeps_the_valid_records(
    seeder: SalesforceSeeder,
) -> None:
    results = await seeder.call(
        "POST",
        "composite/sobjects",
        body={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Kept"},
                {"attributes": {"type": "Account"}, "BillingCity": "Nameless"},
            ],
        },
    )

    assert results[0]["success"] is True
    assert results[1]["errors"] == [
        {
            "statusCode": "REQUIRED_FIELD_MISSING",
            "message": "Required fields are missing: [Name]",
            "fields": ["Name"],
        }
    ]


async def test_reset_empties_the_org_but_keeps_its_users(sandbox_url: str, seeder: SalesforceSeeder) -> None:
    await seeder.create_customer_deal(account_name="Gone Soon", country="GB")
    async with httpx.AsyncClient(base_url=sandbox_url) as control:
        (await control.post("/_sandbox/reset")).raise_for_status()

    assert await seeder.count("FROM Account") == 0
    assert await seeder.count("FROM User") == 2


async def test_records_survive_a_restart_with_a_state_path(tmp_path: Path) -> None:
    config = quick_config(state_path=str(tmp_path / "org.sqlite"))
    with serve(config) as first:
        async with SalesforceSeeder(first.url) as seeder:
            deal = await seeder.create_customer_deal(account_name="Persistent", country="NL", amount=None)
            await seeder.update("Opportunity", deal.opportunity_id, {"Amount": "77.70"})

    with serve(config) as second:
        async with SalesforceSeeder(second.url) as seeder:
            record = await seeder.get("Opportunity", deal.opportunity_id)
            later = await seeder.create_customer_deal(account_name="Next", country="NL")

    assert str(record["Amount"]) == "77.70"
    assert later.account_id != deal.account_id


def test_module_serves_the_sandbox_configured_from_the_environment(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PSSYNC_SANDBOX_SALESFORCE_PORT": str(port),
        "PSSYNC_SANDBOX_SALESFORCE_ORG_ID": "00D000000000009EAA",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sandboxes.salesforce"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).json()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert health == {"status": "ok", "org_id": "00D000000000009EAA"}
