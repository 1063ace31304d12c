"""The NetSuite sandbox on its own terms: what REST web services refuse and how, SuiteQL's slice, and state
that survives a restart. Called over HTTP with TBA signatures made by the sandbox's finance tool, which
shares no code with the connector."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sandboxes.exact_json import loads
from sandboxes.netsuite import NetSuiteSandboxConfig, create_app
from sandboxes.netsuite.finance import NetSuiteError, NetSuiteFinanceUser
from sandboxes.netsuite.suiteql import QueryError, parse, run
from sandboxes.serve import serve_in_thread

from .conftest import NetSuiteSandboxHandle

RECORD = "/services/rest/record/v1"


def finance_user(url: str, config: NetSuiteSandboxConfig) -> NetSuiteFinanceUser:
    return NetSuiteFinanceUser(
        base_url=url,
        account_id=config.account_id,
        consumer_key=config.consumer_key,
        consumer_secret=config.consumer_secret,
        token_id=config.token_id,
        token_secret=config.token_secret,
    )


async def _error(
    user: NetSuiteFinanceUser, method: str, path: str, body: dict[str, Any] | None = None
) -> str:
    with pytest.raises(NetSuiteError) as refused:
        await user.call(method, path, body)
    return str(refused.value)


async def test_records_are_created_read_by_external_id_and_refused_with_netsuites_error_body(
    netsuite_sandbox: NetSuiteSandboxHandle,
) -> None:
    user = finance_user(netsuite_sandbox.url, netsuite_sandbox.config)
    try:
        response = await user.call(
            "PUT", f"{RECORD}/customer/eid:sandbox-test-1", {"companyName": "Acme", "subsidiary": {"id": "1"}}
        )
        assert response.status_code == 204
        customer_id = response.headers["Location"].rsplit("/", 1)[-1]
        by_external_id = loads((await user.call("GET", f"{RECORD}/customer/eid:sandbox-test-1")).content)
        assert by_external_id["id"] == customer_id and by_external_id["currency"]["refName"] == "US Dollar"

        unknown_item = await _error(
            user,
            "POST",
            f"{RECORD}/invoice",
            {
                "entity": {"id": customer_id},
                "item": {
                    "items": [{"item": {"id": "9999"}, "quantity": 1, "rate": 5, "taxCode": {"id": "12"}}]
                },
            },
        )
        assert '"o:errorPath":"item.items[0].item"' in unknown_item and "INVALID_CONTENT" in unknown_item
        assert "NONEXISTENT_ID" in await _error(user, "GET", f"{RECORD}/invoice/424242")
        assert "INVALID_REQUEST" in await _error(
            user, "PUT", f"{RECORD}/customer/{customer_id}", {"companyName": "x"}
        )
        duplicate = await _error(
            user, "POST", f"{RECORD}/customer", {"companyName": "Acme again", "externalId": "sandbox-test-1"}
        )
        assert "DUP_RCRD" in duplicate
    finally:
        await user.aclose()


async def test_suiteql_needs_prefer_transient_and_answers_a_query_it_cannot_parse_with_400(
    netsuite_sandbox: NetSuiteSandboxHandle,
) -> None:
    user = finance_user(netsuite_sandbox.url, netsuite_sandbox.config)
    try:
        without_header = await _error(
            user, "POST", "/services/rest/query/v1/suiteql", {"q": "SELECT id FROM currency"}
        )
        assert "INVALID_HEADER" in without_header and '"o:errorHeader":"Prefer"' in without_header
    finally:
        await user.aclose()


def test_the_suiteql_slice_filters_orders_and_refuses_what_it_does_not_know() -> None:
    rows = [
        {"id": "3", "companyname": "Globex Corp", "isinactive": "F"},
        {"id": "10", "companyname": "Initech", "isinactive": "T"},
        {"id": "7", "companyname": "O'Brien & Sons", "isinactive": "F"},
    ]
    query = parse(
        "SELECT id, companyname AS name FROM customer WHERE isinactive = 'F' "
        "AND (LOWER(companyname) LIKE '%corp%' OR companyname = 'O''Brien & Sons') ORDER BY id DESC"
    )
    assert run(query, rows) == [{"id": "7", "name": "O'Brien & Sons"}, {"id": "3", "name": "Globex Corp"}]
    assert run(parse("SELECT id FROM customer WHERE id IN (3, 10) ORDER BY id"), rows) == [
        {"id": "3"},
        {"id": "10"},
    ]
    with pytest.raises(QueryError, match="unknown column"):
        run(parse("SELECT nosuch FROM customer"), rows)
    with pytest.raises(QueryError, match="unsupported function"):
        parse("SELECT id FROM customer WHERE SUBSTR(companyname, 1) = 'x'")


async def test_records_survive_a_restart_of_a_sandbox_with_a_state_file(tmp_path: Path) -> None:
    config = NetSuiteSandboxConfig(state_path=str(tmp_path / "netsuite.sqlite"))
    served = serve_in_thread(create_app(config))
    user = finance_user(served.url, config)
    try:
        response = await user.call("PUT", f"{RECORD}/customer/eid:kept", {"companyName": "Kept Inc"})
        customer_id = response.headers["Location"].rsplit("/", 1)[-1]
        response = await user.call(
            "POST",
            f"{RECORD}/invoice",
            {
                "entity": {"id": customer_id},
                "item": {
                    "items": [{"item": {"id": "21"}, "quantity": 3, "rate": "0.335", "taxCode": {"id": "11"}}]
                },
            },
        )
        invoice_id = response.headers["Location"].rsplit("/", 1)[-1]
    finally:
        await user.aclose()
        served.stop()

    again = serve_in_thread(create_app(config))
    user = finance_user(again.url, config)
    try:
        invoice = await user.get_invoice(invoice_id)
        payment_id = await user.accept_payment(invoice_id, memo="after the restart")
        paid = await user.get_invoice(invoice_id)
    finally:
        await user.aclose()
        again.stop()
    # 3 x 0.335 = 1.005, half-up to 1.01; 6 % tax on it rounds to 0.06.
    assert (invoice["subtotal"], invoice["taxTotal"], invoice["total"]) == (
        loads("1.01"),
        loads("0.06"),
        loads("1.07"),
    )
    assert payment_id and paid["status"]["refName"] == "Paid In Full" and paid["amountRemaining"] == 0
