"""Fault injection as the chaos run uses it: a reply lost after the request ran, faults aimed at ps-sync's
calls only, a scripted opening, live switches that carry on, and the same plan in front of Tryton.

The sandbox side runs a tiny app behind FaultMiddleware; the Tryton side runs the fault proxy in front of a
stand-in JSON-RPC server. Both over real HTTP on loopback, as the chaos run reaches them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request

from chaos.tryton_proxy import TrytonFaultProxy
from sandboxes.faults import FaultConfig, FaultMiddleware, FaultPlan
from sandboxes.serve import ServedApp, serve_in_thread

PSSYNC = {"User-Agent": "ps-sync/0.1"}


# A connection cut mid-reply reaches the client as an incomplete body or as a reset, depending on whether the
# reset arrives before the client has read what was sent: either way no whole reply came back.
BROKEN_REPLY = (httpx.RemoteProtocolError, httpx.ReadError)


def _vendor_app(created: list[str]) -> tuple[FastAPI, FaultPlan]:
    app = FastAPI()
    plan = FaultPlan()

    @app.post("/api/invoices")
    async def create(request: Request) -> dict[str, Any]:
        created.append((await request.json())["reference"])
        return {"id": len(created)}

    @app.get("/api/invoices")
    async def listing() -> dict[str, Any]:
        return {"invoices": list(created)}

    app.add_middleware(
        FaultMiddleware,
        plan=plan,
        rate_limited=lambda _: (429, [(b"retry-after", b"60")], b"slow down"),
        server_error=lambda _: (503, [], b"unavailable"),
    )
    return app, plan


@pytest.fixture
def vendor() -> Iterator[tuple[ServedApp, FaultPlan, list[str]]]:
    created: list[str] = []
    app, plan = _vendor_app(created)
    served = serve_in_thread(app)
    try:
        yield served, plan, created
    finally:
        served.stop()


def test_a_lost_reply_leaves_the_write_done_and_the_caller_without_an_answer(
    vendor: tuple[ServedApp, FaultPlan, list[str]],
) -> None:
    served, plan, created = vendor
    plan.configure(FaultConfig(reply_lost_rate=1.0))

    with pytest.raises(BROKEN_REPLY):
        httpx.post(f"{served.url}/api/invoices", json={"reference": "INV-1"}, timeout=5)

    assert created == ["INV-1"]
    # A read never has its reply lost: there is nothing it could have done.
    assert httpx.get(f"{served.url}/api/invoices", timeout=5).json() == {"invoices": ["INV-1"]}
    assert plan.injected == {"reply_lost": 1}


def test_a_dropped_call_never_reaches_the_vendor(vendor: tuple[ServedApp, FaultPlan, list[str]]) -> None:
    served, plan, created = vendor
    plan.configure(FaultConfig(drop_rate=1.0))

    with pytest.raises(BROKEN_REPLY):
        httpx.post(f"{served.url}/api/invoices", json={"reference": "INV-1"}, timeout=5)

    assert created == []
    assert plan.injected == {"dropped": 1}


def test_faults_aimed_at_ps_sync_leave_other_callers_alone_and_carry_the_retry_after_asked_for(
    vendor: tuple[ServedApp, FaultPlan, list[str]],
) -> None:
    served, plan, _ = vendor
    plan.configure(FaultConfig(rate_limit_rate=1.0, user_agents=("ps-sync/",), retry_after_seconds=3))

    person = httpx.get(f"{served.url}/api/invoices", timeout=5)
    pssync = httpx.get(f"{served.url}/api/invoices", headers=PSSYNC, timeout=5)

    assert person.status_code == 200
    assert pssync.status_code == 429 and pssync.headers["retry-after"] == "3"
    assert plan.injected == {"rate_limited": 1}


def test_the_scripted_opening_comes_first_and_a_lost_reply_waits_for_a_write(
    vendor: tuple[ServedApp, FaultPlan, list[str]],
) -> None:
    served, plan, created = vendor
    plan.configure(FaultConfig(scripted=("reply_lost", "server_error")))

    # The read passes untouched, the script's head waiting for a write; then the write loses its reply.
    assert httpx.get(f"{served.url}/api/invoices", timeout=5).status_code == 200
    with pytest.raises(BROKEN_REPLY):
        httpx.post(f"{served.url}/api/invoices", json={"reference": "INV-1"}, timeout=5)
    assert httpx.get(f"{served.url}/api/invoices", timeout=5).status_code == 503
    assert httpx.get(f"{served.url}/api/invoices", timeout=5).status_code == 200

    assert created == ["INV-1"]
    assert plan.injected == {"reply_lost": 1, "server_error": 1}


def test_an_outage_and_back_carries_on_the_tally_and_never_replays_the_opening() -> None:
    random_faults = FaultConfig(seed=7, scripted=("timeout",), server_error_rate=0.5, carry_on=True)
    plan = FaultPlan(random_faults)
    assert plan.choose_call_fault()[0] == "timeout"
    opening = [plan.choose_call_fault()[0] for _ in range(5)]

    plan.configure(random_faults.model_copy(update={"outage": True}))
    assert [plan.choose_call_fault()[0] for _ in range(3)] == ["server_error"] * 3
    plan.configure(random_faults)
    after = [plan.choose_call_fault()[0] for _ in range(5)]

    # Back where the draws stood: not the script again, and the same as an uninterrupted plan's next draws.
    uninterrupted = FaultPlan(random_faults)
    uninterrupted_draws = [uninterrupted.choose_call_fault()[0] for _ in range(11)]
    assert uninterrupted_draws[:6] == ["timeout", *opening]
    assert after == uninterrupted_draws[6:]
    assert plan.injected["timeout"] == 1
    assert plan.injected["server_error"] == 3 + opening.count("server_error") + after.count("server_error")

    plan.configure(FaultConfig())
    assert plan.injected == {}


# --- the proxy in front of Tryton -------------------------------------------------------------------------


@pytest.fixture
def tryton() -> Iterator[tuple[ServedApp, ServedApp, TrytonFaultProxy, list[str]]]:
    """A stand-in JSON-RPC server (it records the methods it ran) and the fault proxy in front of it."""
    ran: list[str] = []
    upstream = FastAPI()

    @upstream.post("/{database}/rpc/")
    async def rpc(database: str, request: Request) -> dict[str, Any]:
        call = await request.json()
        ran.append(call["method"])
        return {"id": call["id"], "result": [41]}

    served_upstream = serve_in_thread(upstream)
    proxy = TrytonFaultProxy(served_upstream.url)
    served_proxy = serve_in_thread(proxy)
    try:
        yield served_proxy, served_upstream, proxy, ran
    finally:
        served_proxy.stop()
        served_upstream.stop()


def _call(url: str, method: str) -> httpx.Response:
    body = {"id": 1, "method": method, "params": [[{"name": "Initech"}], {}]}
    return httpx.post(f"{url}/tryton/rpc/", content=json.dumps(body), headers=PSSYNC, timeout=5)


def test_the_proxy_forwards_json_rpc_untouched_when_no_fault_is_drawn(
    tryton: tuple[ServedApp, ServedApp, TrytonFaultProxy, list[str]],
) -> None:
    proxy_url, _, _, ran = tryton[0].url, *tryton[1:]

    response = _call(proxy_url, "model.party.party.create")

    assert response.status_code == 200 and response.json() == {"id": 1, "result": [41]}
    assert ran == ["model.party.party.create"]


def test_the_proxy_loses_the_reply_of_a_call_tryton_ran_and_answers_as_a_load_balancer(
    tryton: tuple[ServedApp, ServedApp, TrytonFaultProxy, list[str]],
) -> None:
    served_proxy, _, proxy, ran = tryton
    httpx.put(
        f"{served_proxy.url}/_sandbox/faults",
        json=FaultConfig(
            scripted=("reply_lost", "server_error", "rate_limited"), retry_after_seconds=4
        ).model_dump(),
    ).raise_for_status()

    # A read is let through (the lost reply waits for a write)...
    assert _call(served_proxy.url, "model.party.party.search").status_code == 200
    # ...the write runs in Tryton and its answer never arrives...
    with pytest.raises(BROKEN_REPLY):
        _call(served_proxy.url, "model.party.party.create")
    # ...then what a load balancer says on its own: no server available, too many requests.
    unavailable = _call(served_proxy.url, "model.party.party.search")
    limited = _call(served_proxy.url, "model.party.party.search")

    assert ran == ["model.party.party.search", "model.party.party.create"]
    assert unavailable.status_code == 503 and "No server is available" in unavailable.text
    assert limited.status_code == 429 and limited.headers["retry-after"] == "4"
    stats = httpx.get(f"{served_proxy.url}/_sandbox/stats").json()
    assert stats["faults"] == {"reply_lost": 1, "server_error": 1, "rate_limited": 1}
    assert proxy.counts["forwarded"] == 2
