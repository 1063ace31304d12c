"""The spec-validating transport itself: it must fail on traffic outside xero_accounting.yaml, or the
connector tests that rely on it would prove nothing."""

from __future__ import annotations

import httpx
import pytest

from ..specs import SpecValidatingTransport, SpecViolation, ValidationLog

TENANT = {"xero-tenant-id": "4e3a5f1c-0000-4000-8000-00000000a001", "Authorization": "Bearer t"}


def _client(handler: httpx.MockTransport, log: ValidationLog) -> httpx.AsyncClient:
    # The transport under test wraps a canned responder: what is tested here is the validator, not Xero.
    return httpx.AsyncClient(transport=SpecValidatingTransport(inner=handler, log=log))


def _answer(status: int, body: bytes, content_type: str = "application/json") -> httpx.MockTransport:
    return httpx.MockTransport(
        lambda request: httpx.Response(status, content=body, headers={"content-type": content_type})
    )


async def test_a_request_body_outside_the_schema_is_stopped_before_it_is_sent() -> None:
    sent: list[httpx.Request] = []
    handler = httpx.MockTransport(lambda request: sent.append(request) or httpx.Response(200))
    async with _client(handler, ValidationLog()) as client:
        with pytest.raises(SpecViolation, match="not of type 'number'"):
            await client.put(
                "http://sandbox/api.xro/2.0/Invoices",
                headers={**TENANT, "content-type": "application/json"},
                content=b'{"Invoices":[{"LineItems":[{"UnitAmount":"12.50"}]}]}',
            )
    assert sent == []


async def test_a_missing_tenant_header_is_a_violation() -> None:
    async with _client(_answer(200, b'{"Invoices":[]}'), ValidationLog()) as client:
        with pytest.raises(SpecViolation, match="xero-tenant-id"):
            await client.get("http://sandbox/api.xro/2.0/Invoices")


async def test_a_response_outside_the_schema_is_a_violation() -> None:
    async with _client(_answer(200, b'{"Invoices":[{"Status":"HALF-PAID"}]}'), ValidationLog()) as client:
        with pytest.raises(SpecViolation, match="HALF-PAID"):
            await client.get("http://sandbox/api.xro/2.0/Invoices", headers=TENANT)


async def test_an_undeclared_status_xero_does_not_document_is_a_violation() -> None:
    async with _client(_answer(418, b"teapot", "text/plain"), ValidationLog()) as client:
        with pytest.raises(SpecViolation, match="neither in the spec"):
            await client.get("http://sandbox/api.xro/2.0/Invoices", headers=TENANT)


async def test_a_429_without_xeros_headers_is_a_violation() -> None:
    async with _client(_answer(429, b"slow down", "text/plain"), ValidationLog()) as client:
        with pytest.raises(SpecViolation, match="Retry-After"):
            await client.get("http://sandbox/api.xro/2.0/Invoices", headers=TENANT)


async def test_valid_traffic_is_counted_in_the_log() -> None:
    log = ValidationLog()
    async with _client(_answer(200, b'{"Invoices":[]}'), log) as client:
        await client.get("http://sandbox/api.xro/2.0/Invoices", headers=TENANT, params={"page": 1})

    assert log.requests["GET /api.xro/2.0/Invoices"] == 1
    assert log.responses["GET /api.xro/2.0/Invoices"] == 1
