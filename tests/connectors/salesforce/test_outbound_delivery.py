"""Outbound messages end to end: the sandbox sends SOAP to a listener served over HTTP, which parses
them with the connector's parser and acknowledges (or not) as a script says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from connectors.salesforce.outbound import (
    OutboundMessage,
    ack_envelope,
    org_ids_match,
    parse_outbound_message,
    soap_fault,
)
from sandboxes.salesforce.seed import SalesforceSeeder
from sandboxes.serve import ServedApp, serve_in_thread

from .conftest import quick_config, serve


@dataclass
class Listener:
    """A tiny outbound-message endpoint: records what arrives and answers from a script."""

    url: str = ""
    # One entry per delivery attempt: "ack", "nack" (Ack false), "fault" (SOAP fault, HTTP 500) or
    # "error" (HTTP 503); once the script runs out, every delivery is acknowledged.
    script: list[str] = field(default_factory=list)
    messages: list[OutboundMessage] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    tokens: list[str | None] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/salesforce/outbound")
        async def receive(request: Request) -> Response:
            self.received_at.append(time.monotonic())
            self.tokens.append(request.query_params.get("token"))
            self.messages.append(parse_outbound_message(await request.body()))
            action = self.script.pop(0) if self.script else "ack"
            if action == "fault":
                return Response(soap_fault("listener is busy"), status_code=500, media_type="text/xml")
            if action == "error":
                return Response("unavailable", status_code=503)
            return Response(ack_envelope(action == "ack"), media_type="text/xml")

        return app

    def notification_ids(self) -> list[str]:
        return [n.notification_id for message in self.messages for n in message.notifications]

    def record_ids(self) -> list[str]:
        return [n.sobject_id for message in self.messages for n in message.notifications]


@pytest.fixture
def listener() -> Iterator[Listener]:
    listening = Listener()
    served = serve_in_thread(listening.app())
    listening.url = f"{served.url}/salesforce/outbound?token=dev-outbound-token"
    yield listening
    served.stop()


async def _outbound(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as control:
        return dict((await control.get("/_sandbox/outbound")).json())


async def _point_at(url: str, endpoint: str | None) -> None:
    async with httpx.AsyncClient(base_url=url) as control:
        (await control.put("/_sandbox/outbound/endpoint", json={"url": endpoint})).raise_for_status()


async def _flush(url: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url) as control:
        return dict((await control.post("/_sandbox/outbound/flush")).json())


async def _until(condition: Callable[[], Any], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def _drained(url: str, within: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while True:
        state = await _outbound(url)
        if not state["pending"]:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"outbound queue not drained: {state['pending']}")
        await asyncio.sleep(0.02)


async def _deal(seeder: SalesforceSeeder, name: str, *, stage: str = "Prospecting") -> str:
    ids = await seeder.create_customer_deal(account_name=name, country="GB", stage=stage)
    return ids.opportunity_id


async def test_closed_won_is_delivered_as_a_soap_notification_the_parser_reads(
    sandbox_url: str, seeder: SalesforceSeeder, listener: Listener
) -> None:
    await _point_at(sandbox_url, listener.url)
    opportunity_id = await _deal(seeder, "Outbound Ltd")

    await seeder.close_won(opportunity_id)
    await _until(lambda: listener.messages)

    message = listener.messages[0]
    assert org_ids_match("00D000000000001", message.organization_id)
    assert message.action_id == "04k8d0000000001AAA"
    assert message.session_id is None
    assert message.enterprise_url is not None and message.enterprise_url.endswith(
        "/services/Soap/c/62.0/00D000000000001"
    )
    [notification] = message.notifications
    assert notification.notification_id.startswith("04l") and len(notification.notification_id) == 18
    assert (notification.sobject_type, notification.sobject_id) == ("Opportunity", opportunity_id)
    assert notification.fields["StageName"] == "Closed Won"
    assert notification.fields["IsWon"] == "true"
    assert notification.fields["Amount"] == "25000.00"
    assert notification.fields["LastModifiedDate"].endswith("Z")
    assert listener.tokens == ["dev-outbound-token"]
    assert (await _drained(sandbox_url))["delivered"] == 1


async def test_only_the_change_to_closed_won_notifies(
    sandbox_url: str, seeder: SalesforceSeeder, listener: Listener
) -> None:
    await _point_at(sandbox_url, listener.url)
    won_at_creation = await _deal(seeder, "Born Won", stage="Closed Won")
    still_open = await _deal(seeder, "Still Open")
    await seeder.set_stage(still_open, "Negotiation/Review")
    await seeder.update("Opportunity", won_at_creation, {"Sync_Status__c": "edited after winning"})

    await _until(lambda: listener.messages)
    await asyncio.sleep(0.2)

    assert listener.record_ids() == [won_at_creation]


async def test_a_change_order_on_a_won_deal_notifies_but_other_edits_do_not(
    sandbox_url: str, seeder: SalesforceSeeder, listener: Listener
) -> None:
    await _point_at(sandbox_url, listener.url)
    won = await _deal(seeder, "Changed After Winning", stage="Closed Won")
    await _until(lambda: listener.messages)
    await seeder.update("Opportunity", won, {"Sync_Status__c": "Project created", "Description": "notes"})
    await seeder.update("Opportunity", won, {"Amount": 30000, "Amendment_Effective_Date__c": "2026-12-15"})
    await _until(lambda: len(listener.messages) > 1)
    await asyncio.sleep(0.2)

    assert listener.record_ids() == [won, won]
    first, second = listener.notification_ids()
    assert first != second
    assert listener.messages[1].notifications[0].fields["Amount"] == "30000.00"


async def test_delivery_is_retried_with_growing_back_off_until_acknowledged(
    sandbox_factory: Callable[..., ServedApp], listener: Listener
) -> None:
    listener.script = ["error", "fault", "nack"]
    served = sandbox_factory(
        outbound_url=listener.url, outbound_retry_base_seconds=0.1, outbound_retry_max_seconds=5.0
    )
    async with SalesforceSeeder(served.url) as seeder:
        opportunity_id = await _deal(seeder, "Flaky Listener", stage="Closed Won")

    state = await _drained(served.url)

    assert len(listener.messages) == 4
    assert len(set(listener.notification_ids())) == 1
    gaps = [
        later - earlier
        for earlier, later in zip(listener.received_at, listener.received_at[1:], strict=False)
    ]
    # Back-off doubles from 0.1 s: about 0.1, 0.2 and 0.4 s between attempts.
    assert gaps[0] >= 0.09 and gaps[1] > gaps[0] + 0.05 and gaps[2] > gaps[1] + 0.1
    assert [attempt["acknowledged"] for attempt in state["attempts"]] == [False, False, False, True]
    assert state["attempts"][0]["status_code"] == 503
    assert listener.record_ids() == [opportunity_id] * 4


async def test_the_message_carries_the_record_as_it_is_when_sent(
    sandbox_url: str, seeder: SalesforceSeeder, listener: Listener
) -> None:
    opportunity_id = await _deal(seeder, "Renamed Co", stage="Closed Won")
    await seeder.update("Opportunity", opportunity_id, {"Name": "Renamed after winning"})

    await _point_at(sandbox_url, listener.url)
    await _flush(sandbox_url)

    assert listener.messages[0].notifications[0].fields["Name"] == "Renamed after winning"


async def test_more_than_100_pending_notifications_go_out_in_messages_of_at_most_100(
    sandbox_factory: Callable[..., ServedApp], listener: Listener
) -> None:
    # A sender that only runs when flushed, so the flush below does all the work.
    served = sandbox_factory(outbound_poll_seconds=600)
    async with SalesforceSeeder(served.url) as seeder:
        account_id = (await seeder.create_customer_deal(account_name="Many Deals", country="GB")).account_id
        await seeder.create_records(
            "Opportunity",
            [
                {
                    "Name": f"Deal {n}",
                    "AccountId": account_id,
                    "StageName": "Closed Won",
                    "CloseDate": "2025-03-31",
                }
                for n in range(150)
            ],
        )
    assert len((await _outbound(served.url))["pending"]) == 150

    await _point_at(served.url, listener.url)
    summary = await _flush(served.url)

    assert summary == {"messages": 2, "acknowledged": 150, "failed": 0, "pending": 0}
    assert [len(message.notifications) for message in listener.messages] == [100, 50]
    assert len(set(listener.notification_ids())) == 150


async def _deliveries_with_seed(seed: int, listener: Listener) -> list[str]:
    """Close five deals in a fresh sandbox with duplicate+reorder faults; the record order received."""
    with serve(
        quick_config(faults={"seed": seed, "duplicate_event_rate": 1.0, "reorder_events": True})
    ) as served:
        async with SalesforceSeeder(served.url) as seeder:
            for n in range(5):
                await _deal(seeder, f"Seeded {n}", stage="Closed Won")
        await _point_at(served.url, listener.url)
        await _flush(served.url)
        async with httpx.AsyncClient(base_url=served.url) as control:
            stats = (await control.get("/_sandbox/stats")).json()
    assert stats["injected_faults"]["duplicate_event"] == 5
    names: list[str] = []
    for message in listener.messages:
        names.extend(notification.fields["Name"] for notification in message.notifications)
    listener.messages.clear()
    return names


async def test_duplicates_and_reordering_follow_the_fault_seed(listener: Listener) -> None:
    first = await _deliveries_with_seed(7, listener)
    second = await _deliveries_with_seed(7, listener)

    in_order = [f"Seeded {n} implementation" for n in range(5)]
    assert first == second
    assert sorted(first) == sorted(in_order * 2)
    assert first != [name for name in in_order for _ in range(2)]


async def test_a_message_never_holds_the_same_notification_twice(
    sandbox_factory: Callable[..., ServedApp], listener: Listener
) -> None:
    served = sandbox_factory(faults={"seed": 3, "duplicate_event_rate": 1.0})
    async with SalesforceSeeder(served.url) as seeder:
        for n in range(3):
            await _deal(seeder, f"Dup {n}", stage="Closed Won")
    await _point_at(served.url, listener.url)

    await _flush(served.url)

    assert len(listener.messages) >= 2
    for message in listener.messages:
        ids = [notification.notification_id for notification in message.notifications]
        assert len(ids) == len(set(ids))
    assert len(listener.notification_ids()) == 6


async def test_notifications_older_than_the_maximum_age_are_dropped(
    sandbox_factory: Callable[..., ServedApp], listener: Listener
) -> None:
    listener.script = ["error"] * 100
    served = sandbox_factory(outbound_max_age_seconds=0.3, outbound_url=listener.url)
    async with SalesforceSeeder(served.url) as seeder:
        await _deal(seeder, "Never Acked", stage="Closed Won")

    state = await _drained(served.url)

    assert state["dropped"] == 1 and state["delivered"] == 0
    assert len(listener.messages) >= 1


async def test_a_rolled_back_transaction_sends_nothing(sandbox_url: str, seeder: SalesforceSeeder) -> None:
    account_id = (await seeder.create_customer_deal(account_name="Rollback Ltd", country="GB")).account_id

    results = await seeder.call(
        "POST",
        "composite/sobjects",
        body={
            "allOrNone": True,
            "records": [
                {
                    "attributes": {"type": "Opportunity"},
                    "Name": "Won",
                    "AccountId": account_id,
                    "StageName": "Closed Won",
                    "CloseDate": "2025-01-31",
                },
                {"attributes": {"type": "Opportunity"}, "Name": "Broken", "StageName": "Closed Won"},
            ],
        },
    )

    assert [result["success"] for result in results] == [False, False]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert (await _outbound(sandbox_url))["pending"] == []


async def test_pending_notifications_survive_a_sandbox_restart(tmp_path: Path) -> None:
    state_path = str(tmp_path / "salesforce.sqlite")
    with serve(quick_config(state_path=state_path)) as first:
        async with SalesforceSeeder(first.url) as seeder:
            opportunity_id = await _deal(seeder, "Durable Queue", stage="Closed Won")

    with serve(quick_config(state_path=state_path)) as second:
        pending = (await _outbound(second.url))["pending"]
        async with SalesforceSeeder(second.url) as seeder:
            record = await seeder.get("Opportunity", opportunity_id)

    assert [doc["record_id"] for doc in pending] == [opportunity_id]
    assert record["StageName"] == "Closed Won"
