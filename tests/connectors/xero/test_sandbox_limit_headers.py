"""Like Xero, the sandbox tells the client its remaining calls on every accounting response, whether or
not it enforces the limits, so a client pacing itself by those headers is exercised wherever it runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from sandboxes.xero import RateLimitConfig
from sandboxes.xero.control import XeroSandboxControl

from .conftest import XeroSandboxHandle

LIMIT_HEADERS = ("X-MinLimit-Remaining", "X-DayLimit-Remaining", "X-AppMinLimit-Remaining")


@pytest.fixture
async def api(xero_sandbox: XeroSandboxHandle) -> AsyncIterator[httpx.AsyncClient]:
    """A bare HTTP session with a token for the sandbox's tenant, as any script would hold."""
    async with httpx.AsyncClient(base_url=xero_sandbox.url) as http:
        token = await http.post(
            "/connect/token",
            auth=(xero_sandbox.config.client_id, xero_sandbox.config.client_secret),
            data={"grant_type": "client_credentials"},
        )
        http.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        http.headers["xero-tenant-id"] = xero_sandbox.config.tenant_id
        http.headers["Accept"] = "application/json"
        yield http


def _remaining(response: httpx.Response) -> tuple[int, ...]:
    return tuple(int(response.headers[name]) for name in LIMIT_HEADERS)


async def test_a_plain_get_reports_the_remaining_calls_against_xeros_documented_limits(
    api: httpx.AsyncClient, control: XeroSandboxControl
) -> None:
    await control.set_rate_limits(RateLimitConfig())  # the default: Xero's numbers, not enforced

    first = await api.get("/api.xro/2.0/Organisation")
    second = await api.get("/api.xro/2.0/Contacts", params={"page": 1})

    assert first.status_code == second.status_code == 200
    assert _remaining(first) == (59, 4999, 9999)
    assert _remaining(second) == (58, 4998, 9998)


async def test_an_error_answer_carries_the_headers_too(
    api: httpx.AsyncClient, control: XeroSandboxControl
) -> None:
    await control.set_rate_limits(RateLimitConfig())

    response = await api.get("/api.xro/2.0/Invoices/00000000-0000-4000-8000-000000000000")

    assert response.status_code == 404
    assert _remaining(response) == (59, 4999, 9999)


async def test_without_enforcement_calls_past_the_minute_limit_are_answered_and_report_none_left(
    api: httpx.AsyncClient, control: XeroSandboxControl
) -> None:
    await control.set_rate_limits(RateLimitConfig(per_minute=2))

    replies = [await api.get("/api.xro/2.0/Organisation") for _ in range(3)]

    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert [int(reply.headers["X-MinLimit-Remaining"]) for reply in replies] == [1, 0, 0]
    assert (await control.stats())["rate_limited"] == 0


async def test_with_enforcement_a_call_past_the_limit_is_refused_with_the_headers(
    api: httpx.AsyncClient, control: XeroSandboxControl
) -> None:
    await control.set_rate_limits(RateLimitConfig(enabled=True, per_minute=1))

    allowed = await api.get("/api.xro/2.0/Organisation")
    refused = await api.get("/api.xro/2.0/Organisation")

    assert allowed.status_code == 200 and refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute" and int(refused.headers["Retry-After"]) > 0
    assert int(refused.headers["X-MinLimit-Remaining"]) == 0
