"""The Kantata client: envelope decoding, page cursors, token refresh, and every failure as the taxonomy."""

from __future__ import annotations

import uuid

import pytest

from connectors.errors import AuthFailed, NotFound, RateLimited, Rejected, Timeout, Unavailable
from connectors.http import build_client
from connectors.kantata import Envelope, KantataConnector

from .conftest import Sandbox


async def _workspace(psa: KantataConnector) -> str:
    envelope = await psa.client.post(
        "/workspaces", {"workspace": {"title": f"Client {uuid.uuid4().hex[:6]}", "budgeted": False}}
    )
    return str(envelope.one()["id"])


def test_records_follow_results_not_the_mixed_collection() -> None:
    # A story requested with its parent: both sit in `stories`, only `results` says which one was asked for.
    envelope = Envelope.decode(
        {
            "count": 1,
            "meta": {"count": 1, "page_count": 3, "page_number": 2, "page_size": 1},
            "results": [{"key": "stories", "id": "2"}],
            "stories": {
                "1": {"id": "1", "title": "parent"},
                "2": {"id": "2", "title": "child", "parent_id": "1"},
            },
        }
    )

    assert [record["title"] for record in envelope.records()] == ["child"]
    assert envelope.related(envelope.one(), "parent_id", "stories")[0]["title"] == "parent"
    assert envelope.next_page == 3


def test_a_reply_without_results_is_unavailable_not_silently_empty() -> None:
    with pytest.raises(Unavailable):
        Envelope.decode({"errors": []})


async def test_pages_walk_to_the_last_page_and_resume_from_a_cursor(psa: KantataConnector) -> None:
    workspace_id = await _workspace(psa)
    batch = [{"workspace_id": int(workspace_id), "date_performed": "2024-05-02", "time_in_minutes": 10}] * 5
    await psa.client.post("/time_entries", {"time_entries": batch})
    params = {"workspace_id": workspace_id, "order": "created_at:asc"}

    walked = [
        (number, len(env.records()))
        async for env, number in psa.client.pages("/time_entries", params, per_page=2)
    ]
    resumed = [number async for _, number in psa.client.pages("/time_entries", params, start="3", per_page=2)]

    assert walked == [(1, 2), (2, 2), (3, 1)]
    assert resumed == [3]


async def test_a_malformed_page_cursor_is_rejected(psa: KantataConnector) -> None:
    with pytest.raises(Rejected):
        async for _ in psa.client.pages("/users", {}, start="next-please"):
            pass


async def test_an_expired_token_is_refreshed_once_and_the_call_succeeds(
    sandbox: Sandbox, psa: KantataConnector
) -> None:
    await psa.client.get("/users/me")
    sandbox.app.state.tokens.expire_all()

    me = (await psa.client.get("/users/me")).one()

    assert me["full_name"] == "ps-sync Integration"
    assert psa.client.auth.token_fetches == 2


async def test_refused_credentials_are_auth_failed(sandbox: Sandbox) -> None:
    connector = KantataConnector(
        base_url=sandbox.url, client_id=sandbox.config.client_id, client_secret="wrong"
    )
    try:
        with pytest.raises(AuthFailed):
            await connector.get_project("30100001")
    finally:
        await connector.aclose()


async def test_a_validation_error_is_rejected_with_the_fields_kantata_named(psa: KantataConnector) -> None:
    workspace_id = await _workspace(psa)

    with pytest.raises(Rejected) as raised:
        await psa.client.post("/time_entries", {"time_entry": {"workspace_id": int(workspace_id)}})

    assert raised.value.status_code == 422
    assert [error.field for error in raised.value.field_errors] == ["date_performed"]


async def test_an_unknown_record_is_not_found(psa: KantataConnector) -> None:
    with pytest.raises(NotFound):
        await psa.client.get("/time_entries/999999999")


async def test_kantatas_429_is_rate_limited_with_no_retry_after(
    sandbox: Sandbox, psa: KantataConnector
) -> None:
    sandbox.app.state.rate_limits.general_per_minute = 1
    await psa.client.get("/users/me")

    with pytest.raises(RateLimited) as raised:
        await psa.client.get("/users/me")

    assert raised.value.retry_after is None
    assert raised.value.status_code == 429


async def test_an_injected_503_is_unavailable(sandbox: Sandbox, psa: KantataConnector) -> None:
    await psa.client.get("/users/me")
    sandbox.faults(seed=1, server_error_rate=1.0)

    with pytest.raises(Unavailable) as raised:
        await psa.client.get("/users/me")

    assert raised.value.status_code == 503


async def test_a_connection_cut_mid_reply_is_unavailable(sandbox: Sandbox, psa: KantataConnector) -> None:
    await psa.client.get("/users/me")
    sandbox.faults(seed=1, drop_rate=1.0)

    with pytest.raises(Unavailable):
        await psa.client.get("/users/me")


async def test_a_reply_slower_than_the_client_timeout_is_timeout(sandbox: Sandbox) -> None:
    connector = sandbox.connector(http=build_client(base_url=sandbox.url, timeout=0.3))
    try:
        await connector.client.get("/users/me")
        sandbox.faults(seed=1, timeout_rate=1.0, timeout_seconds=1.0)
        with pytest.raises(Timeout):
            await connector.client.get("/users/me")
    finally:
        await connector.aclose()


async def test_faults_are_drawn_from_the_seed_so_a_run_replays_exactly(
    sandbox: Sandbox, psa: KantataConnector
) -> None:
    await psa.client.get("/users/me")

    async def outcomes() -> list[str]:
        sandbox.faults(seed=42, server_error_rate=0.3, rate_limit_rate=0.2)
        seen = []
        for _ in range(12):
            try:
                await psa.client.get("/users/me")
                seen.append("ok")
            except (Unavailable, RateLimited) as exc:
                seen.append(type(exc).__name__)
        return seen

    first, second = await outcomes(), await outcomes()

    assert first == second
    assert {"ok", "Unavailable", "RateLimited"} <= set(first)
