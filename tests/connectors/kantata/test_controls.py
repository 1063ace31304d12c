"""The sandbox's `/_sandbox/*` controls, and serving it with `python -m sandboxes.kantata`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from connectors.errors import RateLimited, Unavailable
from connectors.kantata import KantataConnector
from sandboxes.kantata.state import USER_CUSTOM_FIELDS, WORKSPACE_CUSTOM_FIELDS
from sandboxes.serve import free_port

from .conftest import Sandbox, start_sandbox


@pytest.fixture
async def own() -> AsyncIterator[tuple[Sandbox, httpx.AsyncClient, KantataConnector]]:
    sandbox = start_sandbox()
    connector = sandbox.connector()
    async with httpx.AsyncClient(base_url=f"{sandbox.url}/_sandbox") as control:
        yield sandbox, control, connector
    await connector.aclose()
    sandbox.served.stop()


async def test_health_and_stats_report_calls_faults_and_records(
    own: tuple[Sandbox, httpx.AsyncClient, KantataConnector],
) -> None:
    _, control, psa = own
    await psa.client.get("/users/me")
    assert (await control.put("/faults", json={"seed": 2, "server_error_rate": 1.0})).status_code == 200
    with pytest.raises(Unavailable):
        await psa.client.get("/users/me")

    health = (await control.get("/health")).json()
    stats = (await control.get("/stats")).json()

    assert health == {"status": "ok"}
    assert stats["calls"] == 2
    assert stats["by_status"] == {"200": 1, "503": 1}
    assert stats["faults"] == {"server_error": 1}
    assert stats["tokens_issued"] == 1
    assert stats["records"]["users"] == 1


async def test_expired_tokens_are_refreshed_by_the_connector(
    own: tuple[Sandbox, httpx.AsyncClient, KantataConnector],
) -> None:
    _, control, psa = own
    await psa.client.get("/users/me")

    await control.post("/expire-tokens")
    await psa.client.get("/users/me")

    assert (await control.get("/stats")).json()["tokens_issued"] == 2


async def test_reset_empties_the_account_back_to_its_setup(
    own: tuple[Sandbox, httpx.AsyncClient, KantataConnector],
) -> None:
    _, control, psa = own
    await psa.client.post("/roles", {"role": {"name": "Temporary"}})

    await control.post("/reset")

    assert (await psa.client.get("/roles")).count == 0
    fields = len(WORKSPACE_CUSTOM_FIELDS) + len(USER_CUSTOM_FIELDS)
    assert (await psa.client.get("/custom_fields")).count == fields, "the account keeps its custom fields"


async def test_a_dropped_reply_is_switched_on_over_http_and_the_record_still_exists(
    own: tuple[Sandbox, httpx.AsyncClient, KantataConnector],
) -> None:
    _, control, psa = own
    await control.put("/drop-responses", json={"method": "POST", "path": "/api/v1/roles.json", "count": 1})

    with pytest.raises(Unavailable):
        await psa.client.post("/roles", {"role": {"name": "Dropped but made"}})

    assert [role["name"] for role in (await psa.client.get("/roles")).records()] == ["Dropped but made"]


async def test_rate_limits_are_switched_on_over_http(
    own: tuple[Sandbox, httpx.AsyncClient, KantataConnector],
) -> None:
    _, control, psa = own
    await control.put("/rate-limits", json={"general_per_minute": 1})

    await psa.client.get("/users/me")
    with pytest.raises(RateLimited):
        await psa.client.get("/users/me")
    await control.put("/rate-limits", json={})
    await psa.client.get("/users/me")


async def test_the_clock_and_event_lag_controls_move_the_feed(
    own: tuple[Sandbox, httpx.AsyncClient, KantataConnector],
) -> None:
    sandbox, control, psa = own
    await control.put("/event-lag", json={"max_lag_seconds": 600})
    before = sandbox.app.state.kantata.clock.now()
    await psa.client.post("/roles", {"role": {"name": "Lagging"}})
    hidden = await psa.client.get("/subscribed_events", {"event_types": "role:created"})

    moved = (await control.post("/clock", json={"seconds": 601})).json()
    shown = await psa.client.get("/subscribed_events", {"event_types": "role:created"})

    assert hidden.count == 0
    assert shown.count == 1
    assert moved["now"] > before.isoformat()


def test_python_m_serves_the_sandbox_from_environment_settings() -> None:
    port = free_port()
    env = {
        **os.environ,
        "PSSYNC_SANDBOX_KANTATA_PORT": str(port),
        "PSSYNC_SANDBOX_KANTATA_CLIENT_SECRET": "s3cret",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "sandboxes.kantata"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        token = httpx.post(
            f"http://127.0.0.1:{port}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": "dev-kantata-client",
                "client_secret": "s3cret",
            },
        )
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert health.json() == {"status": "ok"}
    assert token.status_code == 200
