"""SalesforceClient against the sandbox over HTTP: rows, upsert, SOQL paging, composite, limits header."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from connectors.errors import Conflict, NotFound, Rejected
from connectors.salesforce import jsonio
from connectors.salesforce.client import CompositeSubrequest, SalesforceClient
from sandboxes.salesforce.seed import SalesforceSeeder

from .conftest import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[SalesforceClient]:
    sf = SalesforceClient(base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield sf
    await sf.aclose()


async def _opportunity(client: SalesforceClient, **fields: object) -> str:
    account_id = await client.create("Account", {"Name": "Globex"})
    return await client.create(
        "Opportunity",
        {
            "Name": "Globex rollout",
            "AccountId": account_id,
            "StageName": "Prospecting",
            "CloseDate": "2025-06-30",
            **fields,
        },
    )


async def test_create_then_get_returns_record_with_attributes_and_18_character_id(
    client: SalesforceClient,
) -> None:
    account_id = await client.create("Account", {"Name": "Initech", "BillingCountryCode": "GB"})

    record = await client.get("Account", account_id)

    assert len(account_id) == 18 and account_id.startswith("001")
    assert record["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v62.0/sobjects/Account/{account_id}",
    }
    assert record["Name"] == "Initech"
    assert record["CurrencyIsoCode"] == "GBP"
    assert record["OwnerId"].startswith("005")


async def test_get_with_fields_returns_only_those_fields(client: SalesforceClient) -> None:
    account_id = await client.create("Account", {"Name": "Umbrella", "BillingCity": "Leeds"})

    record = await client.get("Account", account_id, fields=["Name", "BillingCity"])

    assert set(record) == {"attributes", "Name", "BillingCity"}


async def test_fifteen_character_id_reads_the_same_record(client: SalesforceClient) -> None:
    account_id = await client.create("Account", {"Name": "Short Id Ltd"})

    record = await client.get("Account", account_id[:15])

    assert record["Id"] == account_id


async def test_update_to_closed_won_sets_is_won(client: SalesforceClient) -> None:
    opportunity_id = await _opportunity(client)

    await client.update("Opportunity", opportunity_id, {"StageName": "Closed Won"})

    record = await client.get("Opportunity", opportunity_id, fields=["StageName", "IsWon", "IsClosed"])
    assert (record["StageName"], record["IsWon"], record["IsClosed"]) == ("Closed Won", True, True)


async def test_delete_removes_the_record(client: SalesforceClient) -> None:
    account_id = await client.create("Account", {"Name": "Short Lived"})

    await client.delete("Account", account_id)

    with pytest.raises(NotFound):
        await client.get("Account", account_id)


async def test_upsert_by_external_id_creates_then_updates_the_same_record(client: SalesforceClient) -> None:
    created = await client.upsert("Account", "PSSync_Account_Key__c", "acct-77", {"Name": "Hooli"})
    updated = await client.upsert("Account", "PSSync_Account_Key__c", "acct-77", {"BillingCity": "Palo Alto"})

    assert created.created is True and created.id is not None
    assert updated.created is False
    assert updated.id == created.id
    record = await client.get_by_external_id("Account", "PSSync_Account_Key__c", "ACCT-77")
    assert (record["Name"], record["BillingCity"]) == ("Hooli", "Palo Alto")


async def test_upsert_update_on_api_v45_answers_204_without_a_body(sandbox_url: str) -> None:
    old = SalesforceClient(
        base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, api_version="v45.0"
    )
    try:
        first = await old.upsert("Account", "PSSync_Account_Key__c", "legacy-1", {"Name": "Legacy"})
        second = await old.upsert("Account", "PSSync_Account_Key__c", "legacy-1", {"Name": "Legacy 2"})
    finally:
        await old.aclose()

    assert first.created is True and first.id is not None
    assert second == type(second)(id=None, created=False)


async def test_upsert_matching_several_records_raises_conflict_listing_them(client: SalesforceClient) -> None:
    first = await _opportunity(client, PSSync_Key__c="dup-key")
    second = await _opportunity(client, PSSync_Key__c="dup-key")

    with pytest.raises(Conflict) as raised:
        await client.upsert("Opportunity", "PSSync_Key__c", "dup-key", {"Sync_Status__c": "x"})

    assert raised.value.status_code == 300
    assert first in raised.value.message and second in raised.value.message


async def test_upsert_update_only_never_creates_a_missing_record(client: SalesforceClient) -> None:
    before = await client.count("SELECT COUNT() FROM Account")

    with pytest.raises(NotFound):
        await client.upsert("Account", "PSSync_Account_Key__c", "absent", {"Name": "Nope"}, update_only=True)

    assert await client.count("SELECT COUNT() FROM Account") == before


async def test_upsert_naming_the_external_id_in_the_body_is_rejected(client: SalesforceClient) -> None:
    with pytest.raises(Rejected) as raised:
        await client.upsert(
            "Account", "PSSync_Account_Key__c", "k1", {"Name": "X", "PSSync_Account_Key__c": "k2"}
        )

    assert raised.value.field_errors[0].field == "PSSync_Account_Key__c"


async def test_query_pages_follow_next_records_url_in_requested_batches(
    client: SalesforceClient, seeder: SalesforceSeeder
) -> None:
    await seeder.create_records("Account", [{"Name": f"Bulk {n:03d}"} for n in range(450)])

    pages = [
        page async for page in client.query("SELECT Id, Name FROM Account ORDER BY Name", batch_size=200)
    ]

    assert [len(page.items) for page in pages] == [200, 200, 50]
    assert pages[0].cursor is None
    assert pages[1].cursor == pages[0].next_cursor and pages[2].cursor == pages[1].next_cursor
    assert pages[2].next_cursor is None
    assert pages[0].extra["total_size"] == 450
    names = [record["Name"] for page in pages for record in page.items]
    assert names == sorted(names) and len(set(names)) == 450


async def test_query_resumes_from_a_saved_cursor(client: SalesforceClient, seeder: SalesforceSeeder) -> None:
    await seeder.create_records("Account", [{"Name": f"Resume {n:03d}"} for n in range(300)])
    iterator = client.query("SELECT Name FROM Account ORDER BY Name", batch_size=200)
    first = await anext(iterator)
    await iterator.aclose()

    resumed = [page async for page in client.query("ignored after a cursor", cursor=first.next_cursor)]

    assert [record["Name"] for record in resumed[0].items] == [f"Resume {n:03d}" for n in range(200, 300)]


async def test_query_batch_size_below_200_is_raised_to_200(
    client: SalesforceClient, seeder: SalesforceSeeder
) -> None:
    await seeder.create_records("Account", [{"Name": f"Small {n}"} for n in range(250)])

    pages = [page async for page in client.query("SELECT Id FROM Account", batch_size=10)]

    assert [len(page.items) for page in pages] == [200, 50]


async def test_composite_chains_reference_ids_between_subrequests(client: SalesforceClient) -> None:
    results = await client.composite(
        [
            CompositeSubrequest("POST", "sobjects/Account", "acct", {"Name": "Chained"}),
            CompositeSubrequest(
                "POST", "sobjects/Contact", "person", {"LastName": "Ng", "AccountId": "@{acct.id}"}
            ),
            CompositeSubrequest("GET", "sobjects/Contact/@{person.id}?fields=AccountId", "readBack"),
        ],
        all_or_none=True,
    )

    assert [result.status for result in results] == [201, 201, 200]
    assert results[2].body["AccountId"] == results[0].body["id"]


async def test_composite_all_or_none_rolls_back_every_subrequest_when_one_fails(
    client: SalesforceClient,
) -> None:
    before = await client.count("SELECT COUNT() FROM Account")

    results = await client.composite(
        [
            CompositeSubrequest("POST", "sobjects/Account", "good", {"Name": "Rolled back"}),
            CompositeSubrequest("POST", "sobjects/Account", "bad", {"BillingCity": "No name"}),
        ],
        all_or_none=True,
    )

    assert await client.count("SELECT COUNT() FROM Account") == before
    assert results[0].status == 400 and results[0].body[0]["errorCode"] == "PROCESSING_HALTED"
    assert results[1].body[0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert isinstance(results[1].error("composite"), Rejected)


async def test_composite_without_all_or_none_keeps_the_subrequests_that_succeeded(
    client: SalesforceClient,
) -> None:
    results = await client.composite(
        [
            CompositeSubrequest("POST", "sobjects/Account", "bad", {"Nope__c": 1}),
            CompositeSubrequest("POST", "sobjects/Account", "good", {"Name": "Kept"}),
            CompositeSubrequest("GET", "sobjects/Account/@{bad.id}", "dependent"),
        ],
        all_or_none=False,
    )

    assert [result.status for result in results] == [400, 201, 400]
    assert results[2].body[0]["errorCode"] == "PROCESSING_HALTED"
    assert (await client.get("Account", results[1].body["id"]))["Name"] == "Kept"


async def test_currency_round_trips_exactly_as_decimal(client: SalesforceClient) -> None:
    amounts = [Decimal("0.10"), Decimal("1234567.89"), Decimal("99999999.99")]
    ids = [await _opportunity(client, Amount=amount) for amount in amounts]

    read = [(await client.get("Opportunity", record_id, fields=["Amount"]))["Amount"] for record_id in ids]

    assert read == amounts
    assert all(isinstance(value, Decimal) for value in read)


def test_json_writer_refuses_floats_so_no_amount_is_rounded() -> None:
    with pytest.raises(TypeError, match="float"):
        jsonio.dumps({"Amount": 0.1})
    assert jsonio.dumps({"Amount": Decimal("1E+2"), "Due": Decimal("0.10")}) == '{"Amount":100,"Due":0.10}'


async def test_every_response_reports_api_usage_which_the_client_keeps(client: SalesforceClient) -> None:
    await client.create("Account", {"Name": "Counted"})
    first = client.api_usage
    await client.limits()

    assert first is not None and client.api_usage is not None
    assert client.api_usage.used == first.used + 1
    assert client.api_usage.limit == 100_000


async def test_limits_resource_reports_daily_api_requests(client: SalesforceClient) -> None:
    limits = await client.limits()

    assert limits["DailyApiRequests"]["Max"] == 100_000
    assert limits["DailyApiRequests"]["Remaining"] < 100_000
