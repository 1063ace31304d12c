"""The Xero sandbox's own behaviour, over HTTP: Xero's arithmetic, statuses, dates, errors and
persistence. Requests go through the spec-validating transport unless a test breaks the spec on purpose."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from canonical import Account
from connectors.errors import Conflict, Rejected
from connectors.xero import XeroClient
from sandboxes.serve import serve_in_thread
from sandboxes.xero import XeroSandboxConfig, create_app
from sandboxes.xero.query import QueryError, order, where
from sandboxes.xero.seed import XeroFinanceUser

from ..specs import SpecValidatingTransport, ValidationLog
from .conftest import XeroSandboxHandle, connector_for


@pytest.fixture
async def api(xero_sandbox: XeroSandboxHandle, spec_log: ValidationLog) -> AsyncIterator[XeroClient]:
    client = XeroClient(
        base_url=xero_sandbox.url,
        identity_url=xero_sandbox.url,
        client_id=xero_sandbox.config.client_id,
        client_secret=xero_sandbox.config.client_secret,
        tenant_id=xero_sandbox.config.tenant_id,
        http=httpx.AsyncClient(transport=SpecValidatingTransport(log=spec_log)),
    )
    yield client
    await client.aclose()


async def _contact(api: XeroClient) -> str:
    body = await api.put(
        "/Contacts",
        {"Contacts": [{"Name": f"Sandbox Customer {uuid.uuid4().hex[:10]}"}]},
        idempotency_key=str(uuid.uuid4()),
    )
    contact_id: str = body["Contacts"][0]["ContactID"]
    return contact_id


async def _invoice(
    api: XeroClient,
    lines: list[dict[str, Any]],
    *,
    unitdp: int | None = 4,
    status: str = "AUTHORISED",
    line_amount_types: str = "Exclusive",
) -> dict[str, Any]:
    element = {
        "Type": "ACCREC",
        "Contact": {"ContactID": await _contact(api)},
        "Date": "2026-03-01",
        "DueDate": "2026-03-31",
        "Status": status,
        "LineAmountTypes": line_amount_types,
        "LineItems": [{"AccountCode": "200", "TaxType": "OUTPUT2", **line} for line in lines],
    }
    body = await api.put(
        "/Invoices",
        {"Invoices": [element]},
        idempotency_key=str(uuid.uuid4()),
        params={"unitdp": unitdp} if unitdp else None,
    )
    invoice: dict[str, Any] = body["Invoices"][0]
    return invoice


# --- arithmetic -------------------------------------------------------------------------------------------


async def test_exclusive_invoices_round_each_line_and_take_tax_per_line(api: XeroClient) -> None:
    # Three lines of 0.03: tax per line 0.006 -> 0.01 each, 0.03 in all (on the total it would be 0.02).
    invoice = await _invoice(
        api,
        [
            {"Description": f"Line {n}", "Quantity": Decimal(1), "UnitAmount": Decimal("0.03")}
            for n in range(3)
        ],
    )

    assert [line["TaxAmount"] for line in invoice["LineItems"]] == [Decimal("0.01")] * 3
    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (
        Decimal("0.09"),
        Decimal("0.03"),
        Decimal("0.12"),
    )
    assert invoice["AmountDue"] == invoice["Total"]


async def test_unit_amounts_keep_two_decimals_unless_the_client_opts_into_four(api: XeroClient) -> None:
    line = {"Description": "Mileage", "Quantity": Decimal(3), "UnitAmount": Decimal("0.335")}

    two_places = await _invoice(api, [line], unitdp=None)
    four_places = await _invoice(api, [line], unitdp=4)

    assert two_places["LineItems"][0]["UnitAmount"] == Decimal("0.34")
    assert two_places["SubTotal"] == Decimal("1.02")
    assert four_places["SubTotal"] == Decimal("1.01")


async def test_inclusive_lines_take_the_tax_out_of_the_line_amount(api: XeroClient) -> None:
    invoice = await _invoice(
        api,
        [{"Description": "Fixed fee", "Quantity": Decimal(1), "UnitAmount": Decimal("100.00")}],
        line_amount_types="Inclusive",
    )

    assert (invoice["SubTotal"], invoice["TotalTax"], invoice["Total"]) == (
        Decimal("83.33"),
        Decimal("16.67"),
        Decimal("100.00"),
    )


async def test_credit_allocation_and_payment_settle_the_invoice_to_paid(
    api: XeroClient, finance: XeroFinanceUser
) -> None:
    invoice = await _invoice(
        api, [{"Description": "Work", "Quantity": Decimal(1), "UnitAmount": Decimal("100")}]
    )
    credit = await finance.create_credit_note(
        invoice["Contact"]["ContactID"], Decimal("20.00"), description="Sorry"
    )
    await finance.allocate_credit_note(credit["CreditNoteID"], invoice["InvoiceID"], Decimal("20.00"))
    await finance.apply_payment(invoice["InvoiceID"], Decimal("100.00"))

    settled = (await api.get(f"/Invoices/{invoice['InvoiceID']}"))["Invoices"][0]
    spent = (await api.get(f"/CreditNotes/{credit['CreditNoteID']}"))["CreditNotes"][0]

    assert (settled["Status"], settled["AmountDue"], settled["AmountPaid"], settled["AmountCredited"]) == (
        "PAID",
        Decimal("0.00"),
        Decimal("100.00"),
        Decimal("20.00"),
    )
    assert settled["FullyPaidOnDate"].startswith("/Date(")
    assert (spent["Status"], spent["RemainingCredit"]) == ("PAID", Decimal("0.00"))


async def test_payment_above_the_amount_due_is_refused(api: XeroClient, finance: XeroFinanceUser) -> None:
    invoice = await _invoice(
        api, [{"Description": "Work", "Quantity": Decimal(1), "UnitAmount": Decimal("10")}]
    )

    with pytest.raises(Rejected, match="exceeds the amount outstanding"):
        await api.put(
            "/Payments",
            {
                "Payments": [
                    {
                        "Invoice": {"InvoiceID": invoice["InvoiceID"]},
                        "Account": {"Code": "090"},
                        "Date": "2026-03-02",
                        "Amount": Decimal("12.01"),
                    }
                ]
            },
            idempotency_key=str(uuid.uuid4()),
        )


# --- statuses ---------------------------------------------------------------------------------------------


async def test_drafts_move_through_submitted_to_authorised_and_cannot_go_back(api: XeroClient) -> None:
    draft = await _invoice(
        api, [{"Description": "Work", "Quantity": Decimal(1), "UnitAmount": Decimal("5")}], status="DRAFT"
    )
    path = f"/Invoices/{draft['InvoiceID']}"

    submitted = await api.post(
        path, {"Invoices": [{"Status": "SUBMITTED"}]}, idempotency_key=str(uuid.uuid4())
    )
    approved = await api.post(
        path, {"Invoices": [{"Status": "AUTHORISED"}]}, idempotency_key=str(uuid.uuid4())
    )
    with pytest.raises(Rejected, match="cannot be changed from AUTHORISED to DRAFT"):
        await api.post(path, {"Invoices": [{"Status": "DRAFT"}]}, idempotency_key=str(uuid.uuid4()))

    assert submitted["Invoices"][0]["Status"] == "SUBMITTED"
    assert approved["Invoices"][0]["Status"] == "AUTHORISED"


async def test_a_voided_invoice_cannot_be_modified(api: XeroClient, finance: XeroFinanceUser) -> None:
    invoice = await _invoice(
        api, [{"Description": "Work", "Quantity": Decimal(1), "UnitAmount": Decimal("5")}]
    )
    voided = await finance.void_invoice(invoice["InvoiceID"])

    with pytest.raises(Rejected, match="not of valid status for modification"):
        await api.post(
            f"/Invoices/{invoice['InvoiceID']}",
            {"Invoices": [{"Reference": "late edit"}]},
            idempotency_key=str(uuid.uuid4()),
        )
    assert (voided["Status"], voided["AmountDue"]) == ("VOIDED", Decimal("0.00"))


async def test_authorising_a_sales_invoice_marks_the_contact_as_customer(api: XeroClient) -> None:
    invoice = await _invoice(
        api, [{"Description": "Work", "Quantity": Decimal(1), "UnitAmount": Decimal("5")}]
    )

    contact = (await api.get(f"/Contacts/{invoice['Contact']['ContactID']}"))["Contacts"][0]

    assert contact["IsCustomer"] is True


# --- wire formats and errors ------------------------------------------------------------------------------


async def test_dates_use_xeros_ms_date_format_with_iso_strings_alongside(api: XeroClient) -> None:
    invoice = await _invoice(
        api, [{"Description": "Work", "Quantity": Decimal(1), "UnitAmount": Decimal("5")}]
    )

    assert invoice["Date"] == "/Date(1772323200000+0000)/" and invoice["DateString"] == "2026-03-01T00:00:00"
    assert re.fullmatch(r"/Date\(\d{13}\+0000\)/", invoice["UpdatedDateUTC"])


async def test_duplicate_contact_name_is_a_validation_exception(api: XeroClient) -> None:
    name = f"Unique Name {uuid.uuid4().hex[:8]}"
    await api.put("/Contacts", {"Contacts": [{"Name": name}]}, idempotency_key=str(uuid.uuid4()))

    with pytest.raises(Rejected, match="already assigned to another contact") as raised:
        await api.put("/Contacts", {"Contacts": [{"Name": name}]}, idempotency_key=str(uuid.uuid4()))
    assert raised.value.field_errors[0].code == "ValidationException"


async def test_bad_where_filter_is_a_query_parse_exception(api: XeroClient) -> None:
    with pytest.raises(Rejected, match="QueryParseException"):
        await api.get("/Invoices", params={"where": 'Reference=="unterminated'})


async def test_missing_tenant_header_is_refused_with_403(xero_sandbox: XeroSandboxHandle) -> None:
    # Deliberately outside the spec (the header is required), so sent without the validating transport.
    async with httpx.AsyncClient(base_url=xero_sandbox.url) as http:
        token = (
            await http.post(
                "/connect/token",
                data={"grant_type": "client_credentials"},
                auth=(xero_sandbox.config.client_id, xero_sandbox.config.client_secret),
            )
        ).json()
        response = await http.get(
            "/api.xro/2.0/Invoices", headers={"Authorization": f"Bearer {token['access_token']}"}
        )

    assert response.status_code == 403
    assert response.json()["Detail"] == "AuthenticationUnsuccessful"


async def test_token_endpoint_refuses_bad_clients_grants_and_scopes(xero_sandbox: XeroSandboxHandle) -> None:
    credentials = (xero_sandbox.config.client_id, xero_sandbox.config.client_secret)
    async with httpx.AsyncClient(base_url=xero_sandbox.url) as http:
        bad_client = await http.post(
            "/connect/token",
            data={"grant_type": "client_credentials"},
            auth=(xero_sandbox.config.client_id, "wrong"),
        )
        bad_grant = await http.post("/connect/token", data={"grant_type": "password"}, auth=credentials)
        bad_scope = await http.post(
            "/connect/token",
            data={"grant_type": "client_credentials", "scope": "accounting.everything"},
            auth=credentials,
        )

    assert [r.json()["error"] for r in (bad_client, bad_grant, bad_scope)] == [
        "invalid_client",
        "unsupported_grant_type",
        "invalid_scope",
    ]


def test_where_filters_parse_xero_syntax() -> None:
    doc = {
        "Type": "ACCREC",
        "Reference": "PSS-1",
        "AmountDue": "10.50",
        "Date": "2026-03-01",
        "Contact": {"ContactID": "AAAAAAAA-0000-0000-0000-000000000001"},
    }

    assert where('Type=="ACCREC" AND Reference=="PSS-1"')(doc)
    assert where('Contact.ContactID=guid("aaaaaaaa-0000-0000-0000-000000000001")')(doc)
    assert where("AmountDue > 10 && Date >= DateTime(2026, 03, 01)")(doc)
    assert where('(Reference.StartsWith("X") OR Reference.Contains("SS"))')(doc)
    assert not where('Reference!="PSS-1"')(doc)
    with pytest.raises(QueryError):
        where("Reference ~ 1")
    assert [d["n"] for d in order([{"n": "10"}, {"n": "9"}, {"n": "x"}], "n DESC")] == ["x", "10", "9"]


# --- persistence ------------------------------------------------------------------------------------------


async def test_state_survives_a_restart_when_a_state_path_is_set(
    tmp_path: Path, spec_log: ValidationLog
) -> None:
    config = XeroSandboxConfig(state_path=str(tmp_path / "xero.sqlite"))

    async def with_sandbox(work: Any) -> Any:
        served = serve_in_thread(create_app(config))
        client = XeroClient(
            base_url=served.url,
            identity_url=served.url,
            client_id=config.client_id,
            client_secret=config.client_secret,
            tenant_id=config.tenant_id,
            http=httpx.AsyncClient(transport=SpecValidatingTransport(log=spec_log)),
        )
        try:
            return await work(client)
        finally:
            await client.aclose()
            served.stop()

    invoice = await with_sandbox(
        lambda client: _invoice(
            client, [{"Description": "Kept", "Quantity": Decimal("7.5"), "UnitAmount": Decimal("123.33")}]
        )
    )

    async def read_back(client: XeroClient) -> tuple[dict[str, Any], dict[str, Any]]:
        fetched = (await client.get(f"/Invoices/{invoice['InvoiceID']}"))["Invoices"][0]
        fresh = await _invoice(
            client, [{"Description": "Next", "Quantity": Decimal(1), "UnitAmount": Decimal(1)}]
        )
        return fetched, fresh

    fetched, fresh = await with_sandbox(read_back)

    assert fetched["SubTotal"] == Decimal("924.98") and fetched["InvoiceNumber"] == invoice["InvoiceNumber"]
    assert fresh["InvoiceNumber"] != invoice["InvoiceNumber"], "numbering continues after a restart"


async def test_find_customer_conflicts_when_two_contacts_share_the_crm_id(
    api: XeroClient, xero_sandbox: XeroSandboxHandle, spec_log: ValidationLog
) -> None:
    crm_id = f"001DUP{uuid.uuid4().hex[:8]}"
    for n in range(2):
        await api.put(
            "/Contacts",
            {"Contacts": [{"Name": f"Dup {n} {crm_id}", "ContactNumber": crm_id}]},
            idempotency_key=str(uuid.uuid4()),
        )
    erp = connector_for(xero_sandbox, spec_log)
    try:
        with pytest.raises(Conflict, match="2 Xero contacts"):
            await erp.find_customer(Account(id=crm_id, name="whoever"))
    finally:
        await erp.aclose()


# --- reference data ---------------------------------------------------------------------------------------


async def test_reference_data_is_a_uk_chart_with_vat_rates_and_three_currencies(api: XeroClient) -> None:
    accounts = {a["Code"]: a for a in (await api.get("/Accounts"))["Accounts"]}
    rates = {r["TaxType"]: r for r in (await api.get("/TaxRates"))["TaxRates"]}
    currencies = [c["Code"] for c in (await api.get("/Currencies"))["Currencies"]]
    items = [i["Code"] for i in (await api.get("/Items"))["Items"]]
    sales_only = (await api.get("/TaxRates", params={"where": "CanApplyToRevenue==true"}))["TaxRates"]

    assert (accounts["200"]["Name"], accounts["200"]["Type"]) == ("Sales", "REVENUE")
    assert (accounts["090"]["Type"], accounts["090"]["EnablePaymentsToAccount"]) == ("BANK", True)
    assert rates["OUTPUT2"]["EffectiveRate"] == Decimal("20")
    assert {
        t: rates[t]["EffectiveRate"] for t in ("ZERORATEDOUTPUT", "EXEMPTOUTPUT", "NONE")
    } == dict.fromkeys(("ZERORATEDOUTPUT", "EXEMPTOUTPUT", "NONE"), Decimal("0"))
    assert "INPUT2" not in {r["TaxType"] for r in sales_only}
    assert currencies == ["GBP", "EUR", "USD"]
    assert items == ["CONSULT", "EXPENSES"]
