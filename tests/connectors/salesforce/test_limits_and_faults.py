"""Request limits and injected faults, seen through the real connector: the taxonomy, never a retry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.errors import ConnectorError, RateLimited, Timeout, Unavailable
from connectors.salesforce.client import SalesforceClient

from .conftest import CLIENT_ID, CLIENT_SECRET


@pytest.fixture
async def client(sandbox_url: str) -> AsyncIterator[SalesforceClient]:
    sf = SalesforceClient(base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    yield sf
    await sf.aclose()


async def _faults(control: httpx.AsyncClient, **config: object) -> None:
    (await control.put("/_sandbox/faults", json=config)).raise_for_status()


async def test_exceeding_the_daily_request_limit_raises_rate_limited(
    client: SalesforceClient, control: httpx.AsyncClient
) -> None:
    (
        await control.put(
            "/_sandbox/limits", json={"enforce_api_limit": True, "daily_api_limit": 50, "used": 50}
        )
    ).raise_for_status()

    with pytest.raises(RateLimited) as raised:
        await client.create("Account", {"Name": "Over the limit"})

    assert raised.value.status_code == 403
    assert "REQUEST_LIMIT_EXCEEDED" in raised.value.message
    assert client.api_usage is not None and (client.api_usage.used, client.api_usage.limit) == (50, 50)


async def test_injected_rate_limit_is_salesforce_403_and_maps_to_rate_limited(
    client: SalesforceClient, control: httpx.AsyncClient
) -> None:
    await client.limits()  # a session first: the token endpoint is never faulted anyway
    await _faults(control, rate_limit_rate=1.0)

    with pytest.raises(RateLimited, match="ConcurrentPerOrgLongTxn"):
        await client.limits()

    stats = (await control.get("/_sandbox/stats")).json()
    assert stats["rate_limited"] == 1


async def test_injected_server_error_raises_unavailable(
    client: SalesforceClient, control: httpx.AsyncClient
) -> None:
    await _faults(control, server_error_rate=1.0)

    with pytest.raises(Unavailable, match="UNKNOWN_EXCEPTION"):
        await client.create("Account", {"Name": "Boom"})


async def test_dropped_connection_raises_unavailable(
    client: SalesforceClient, control: httpx.AsyncClient
) -> None:
    await _faults(control, drop_rate=1.0)

    with pytest.raises(Unavailable, match="connection to Salesforce failed"):
        await client.create("Account", {"Name": "Cut off"})


async def test_hanging_call_raises_timeout_with_a_short_client_timeout(
    sandbox_url: str, control: httpx.AsyncClient
) -> None:
    await _faults(
        control, timeout_rate=1.0, timeout_seconds=1.5, path_prefixes=["/services/data/v62.0/limits"]
    )
    http = httpx.AsyncClient(timeout=0.3)
    client = SalesforceClient(
        base_url=sandbox_url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, http=http
    )
    try:
        with pytest.raises(Timeout):
            await client.limits()
    finally:
        await client.aclose()
        await http.aclose()


async def test_faults_are_deterministic_for_a_seed(
    client: SalesforceClient, control: httpx.AsyncClient
) -> None:
    async def outcomes() -> list[str]:
        await _faults(control, seed=42, server_error_rate=0.3, rate_limit_rate=0.2)
        seen = []
        for _ in range(20):
            try:
                await client.limits()
                seen.append("ok")
            except ConnectorError as error:
                seen.append(error.kind)
        return seen

    await client.limits()
    first, second = await outcomes(), await outcomes()

    assert first == second
    assert {"ok", "Unavailable", "RateLimited"} <= set(first)


async def test_stats_count_calls_and_injected_faults(
    client: SalesforceClient, control: httpx.AsyncClient
) -> None:
    await client.limits()
    await _faults(control, server_error_rate=1.0)
    with pytest.raises(Unavailable):
        await client.limits()

    stats = (await control.get("/_sandbox/stats")).json()

    assert stats["calls"] == 1  # the faulted call never reached the API
    assert stats["injected_faults"] == {"server_error": 1}
    assert stats["tokens_issued"] >= 1
