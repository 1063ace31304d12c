"""Salesforce error bodies, as the sandbox sends them, become the connector taxonomy with field errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from connectors.errors import Conflict, FieldError, NotFound, Rejected
from connectors.salesforce.client import SalesforceClient

from .conftest import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[SalesforceClient]:
    sf = SalesforceClient(base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield sf
    await sf.aclose()


async def _rejected(client: SalesforceClient, sobject: str, fields: dict[str, object]) -> Rejected:
    with pytest.raises(Rejected) as raised:
        await client.create(sobject, fields)
    return raised.value


async def test_unknown_field_is_rejected_naming_the_field(client: SalesforceClient) -> None:
    error = await _rejected(client, "Account", {"Name": "X", "Colour__c": "blue"})

    assert error.field_errors == [
        FieldError(
            field="Colour__c",
            message="No such column 'Colour__c' on sobject of type Account",
            code="INVALID_FIELD",
        )
    ]


async def test_missing_required_fields_are_rejected_one_field_error_each(client: SalesforceClient) -> None:
    error = await _rejected(client, "Opportunity", {"Name": "No stage"})

    assert [(e.field, e.code) for e in error.field_errors] == [
        ("StageName", "REQUIRED_FIELD_MISSING"),
        ("CloseDate", "REQUIRED_FIELD_MISSING"),
    ]


async def test_value_outside_a_restricted_picklist_is_rejected(client: SalesforceClient) -> None:
    error = await _rejected(
        client,
        "Opportunity",
        {"Name": "P", "StageName": "Prospecting", "CloseDate": "2025-01-01", "Billing_Model__c": "Barter"},
    )

    assert error.field_errors[0].field == "Billing_Model__c"
    assert error.field_errors[0].code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "Barter" in error.field_errors[0].message


async def test_malformed_id_in_a_lookup_is_rejected(client: SalesforceClient) -> None:
    error = await _rejected(client, "Contact", {"LastName": "Ng", "AccountId": "not-an-id"})

    assert (error.field_errors[0].field, error.field_errors[0].code) == ("AccountId", "MALFORMED_ID")


async def test_lookup_to_a_record_of_the_wrong_type_is_rejected(client: SalesforceClient) -> None:
    user_id = (await client.query_all("SELECT Id FROM User LIMIT 1"))[0]["Id"]

    error = await _rejected(client, "Contact", {"LastName": "Ng", "AccountId": user_id})

    assert (error.field_errors[0].field, error.field_errors[0].code) == (
        "AccountId",
        "FIELD_INTEGRITY_EXCEPTION",
    )


async def test_id_of_another_object_type_in_the_path_is_malformed_id(client: SalesforceClient) -> None:
    account_id = await client.create("Account", {"Name": "Typed"})

    with pytest.raises(Rejected) as raised:
        await client.get("Opportunity", account_id)

    assert raised.value.field_errors[0].code == "MALFORMED_ID"


async def test_missing_record_raises_not_found(client: SalesforceClient) -> None:
    with pytest.raises(NotFound):
        await client.get("Account", "0018d00000zzzzzAAA")


async def test_write_to_a_read_only_field_is_rejected(client: SalesforceClient) -> None:
    error = await _rejected(
        client,
        "Opportunity",
        {"Name": "R", "StageName": "Prospecting", "CloseDate": "2025-01-01", "IsWon": True},
    )

    assert (error.field_errors[0].field, error.field_errors[0].code) == (
        "IsWon",
        "INVALID_FIELD_FOR_INSERT_UPDATE",
    )


async def test_text_longer_than_the_field_is_rejected(client: SalesforceClient) -> None:
    error = await _rejected(client, "Account", {"Name": "N", "BillingCity": "x" * 41})

    assert (error.field_errors[0].field, error.field_errors[0].code) == ("BillingCity", "STRING_TOO_LONG")


async def test_duplicate_value_in_a_unique_external_id_is_a_conflict(client: SalesforceClient) -> None:
    await client.create("Account", {"Name": "One", "PSSync_Account_Key__c": "same"})

    with pytest.raises(Conflict, match="DUPLICATE_VALUE"):
        await client.create("Account", {"Name": "Two", "PSSync_Account_Key__c": "SAME"})


async def test_soql_outside_the_supported_subset_is_malformed_query(client: SalesforceClient) -> None:
    with pytest.raises(Rejected) as raised:
        await client.query_all("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b'")

    assert raised.value.field_errors[0].code == "MALFORMED_QUERY"
    assert "OR" in raised.value.message


async def test_soql_naming_an_unknown_column_is_invalid_field(client: SalesforceClient) -> None:
    with pytest.raises(Rejected) as raised:
        await client.query_all("SELECT Id, Shoe_Size__c FROM Contact")

    assert raised.value.field_errors[0] == FieldError(
        field="Shoe_Size__c", message=raised.value.field_errors[0].message, code="INVALID_FIELD"
    )


async def test_soql_filter_with_a_malformed_id_is_rejected(client: SalesforceClient) -> None:
    with pytest.raises(Rejected, match="invalid ID field: 006bad"):
        await client.query_all("SELECT Id FROM Opportunity WHERE Id = '006bad'")
