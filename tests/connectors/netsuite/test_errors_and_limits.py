"""NetSuite's error body mapped onto the taxonomy, its concurrency governance and request limits, and
injected faults the connector survives without booking anything twice."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from canonical import Account, LegalEntity
from connectors.errors import AuthFailed, Conflict, NotFound, Rejected, Unavailable
from connectors.netsuite.errors import NetSuiteRateLimited, error_for
from sandboxes.faults import FaultConfig
from sandboxes.netsuite import GovernanceConfig
from sandboxes.netsuite.control import NetSuiteSandboxControl

from ..contract.erp_contract import build_invoice, net_thousand_lines
from .conftest import NetSuiteSandboxHandle, connector_for, tba_auth


def _response(
    status: int, details: list[dict[str, str]], headers: dict[str, str] | None = None
) -> httpx.Response:
    body = {"type": "https://www.rfc-editor.org", "title": "x", "status": status, "o:errorDetails": details}
    return httpx.Response(status, json=body, headers=headers)


def test_a_400_names_each_field_netsuite_points_at() -> None:
    error = error_for(
        _response(
            400,
            [
                {
                    "detail": "Error while accessing resource: You have entered an Invalid Field Value 9999 "
                    "for the following field: item",
                    "o:errorCode": "INVALID_CONTENT",
                    "o:errorPath": "item.items[0].item",
                },
                {"detail": "limit too big", "o:errorCode": "INVALID_PARAMETER", "o:errorQueryParam": "limit"},
            ],
        ),
        "POST /invoice",
    )
    assert isinstance(error, Rejected)
    assert [(e.field, e.code) for e in error.field_errors] == [
        ("item.items[0].item", "INVALID_CONTENT"),
        ("limit", "INVALID_PARAMETER"),
    ]
    assert "Invalid Field Value 9999" in error.message


def test_the_concurrency_limit_is_rate_limited_with_a_short_retry_and_request_limits_keep_retry_after() -> (
    None
):
    concurrency = error_for(
        _response(429, [{"detail": "x", "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}]), "GET"
    )
    assert isinstance(concurrency, NetSuiteRateLimited)
    assert concurrency.code == "CONCURRENCY_LIMIT_EXCEEDED" and concurrency.retry_after == 1.0
    request_limit = error_for(
        _response(429, [{"detail": "x", "o:errorCode": "REQUEST_LIMIT_EXCEEDED"}], {"Retry-After": "42"}),
        "GET",
    )
    assert isinstance(request_limit, NetSuiteRateLimited) and request_limit.retry_after == 42.0


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, AuthFailed),
        (403, AuthFailed),
        (404, NotFound),
        (409, Conflict),
        (500, Unavailable),
        (503, Unavailable),
    ],
)
def test_statuses_map_onto_the_taxonomy(status: int, kind: type[Exception]) -> None:
    assert isinstance(error_for(_response(status, [{"detail": "x", "o:errorCode": "X"}]), "GET"), kind)


async def test_a_call_beyond_the_accounts_concurrency_limit_is_refused_with_concurrency_limit_exceeded(
    netsuite_sandbox: NetSuiteSandboxHandle, control: NetSuiteSandboxControl
) -> None:
    await control.set_governance(GovernanceConfig(concurrency_limit=1))
    await control.set_faults(FaultConfig(latency_ms=400, path_prefixes=("/services/rest/record",)))
    # Two integrations of one account, each within its own share: the account limit refuses the second.
    first = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    second = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    try:
        results = await asyncio.gather(
            first.client.get_record("subsidiary", "1"),
            second.client.get_record("subsidiary", "1"),
            return_exceptions=True,
        )
    finally:
        await first.aclose()
        await second.aclose()
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 1
    assert isinstance(refused[0], NetSuiteRateLimited) and refused[0].code == "CONCURRENCY_LIMIT_EXCEEDED"
    assert (await control.stats())["rate_limited_by_code"]["CONCURRENCY_LIMIT_EXCEEDED"] >= 1


async def test_the_connector_keeps_its_own_calls_within_its_share_of_the_limit(
    netsuite_sandbox: NetSuiteSandboxHandle, control: NetSuiteSandboxControl
) -> None:
    await control.set_governance(GovernanceConfig(concurrency_limit=2))
    await control.set_faults(FaultConfig(latency_ms=100, path_prefixes=("/services/rest/record",)))
    refused_before = (await control.stats())["rate_limited"]
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox), max_concurrency=2)
    try:
        records = await asyncio.gather(*(connector.client.get_record("subsidiary", "1") for _ in range(8)))
    finally:
        await connector.aclose()
    assert [r["id"] for r in records] == ["1"] * 8
    assert connector.client.max_in_flight == 2
    assert (await control.stats())["rate_limited"] == refused_before


async def test_a_request_limit_refuses_with_retry_after(
    netsuite_sandbox: NetSuiteSandboxHandle, control: NetSuiteSandboxControl
) -> None:
    await control.set_governance(GovernanceConfig(requests_per_minute=2))
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    try:
        await connector.client.get_record("subsidiary", "1")
        await connector.client.get_record("subsidiary", "1")
        with pytest.raises(NetSuiteRateLimited) as limited:
            await connector.client.get_record("subsidiary", "1")
    finally:
        await connector.aclose()
    assert limited.value.code == "REQUEST_LIMIT_EXCEEDED"
    assert limited.value.retry_after is not None and 0 < limited.value.retry_after <= 61


@pytest.mark.parametrize(
    ("fault", "kind"), [("server_error", Unavailable), ("rate_limited", NetSuiteRateLimited)]
)
async def test_injected_faults_answer_as_netsuite_would(
    netsuite_sandbox: NetSuiteSandboxHandle,
    control: NetSuiteSandboxControl,
    fault: str,
    kind: type[Exception],
) -> None:
    await control.set_faults(FaultConfig(scripted=(fault,)))  # type: ignore[arg-type]
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    try:
        with pytest.raises(kind):
            await connector.client.get_record("subsidiary", "1")
        assert (await connector.client.get_record("subsidiary", "1"))["id"] == "1"
    finally:
        await connector.aclose()
    assert (await control.stats())["faults"] == {fault: 1}


async def test_a_lost_reply_to_posting_is_retried_into_the_one_invoice(
    netsuite_sandbox: NetSuiteSandboxHandle,
    control: NetSuiteSandboxControl,
    entity: LegalEntity,
    seed_account: Account,
) -> None:
    connector = connector_for(netsuite_sandbox, tba_auth(netsuite_sandbox))
    try:
        customer_id = await connector.create_customer(seed_account, entity=entity, idempotency_key="c")
        invoice = build_invoice(entity, seed_account, customer_id, net_thousand_lines(entity))
        key = f"post:{uuid.uuid4()}"
        # The invoice upsert runs, and its reply is cut: the caller cannot tell whether it was booked.
        await control.set_faults(
            FaultConfig(scripted=("reply_lost",), path_prefixes=("/services/rest/record/v1/invoice",))
        )
        with pytest.raises(Unavailable):
            await connector.post_invoice(invoice, entity=entity, idempotency_key=key)
        await control.set_faults(FaultConfig())
        posted = await connector.post_invoice(invoice, entity=entity, idempotency_key=key)
        found = await connector.find_invoice(invoice.reference)
    finally:
        await connector.aclose()
    assert found is not None and found.invoice_id == posted.invoice_id
    assert posted.total == invoice.total
