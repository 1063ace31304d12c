"""Xero webhooks at the ingress: signature first, the intent-to-receive handshake, malformed bodies."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx

from connectors.xero.webhooks import signature

from ..support.system import System


def payload(system: System, events: list[dict[str, object]]) -> bytes:
    return json.dumps(
        {
            "events": events,
            "firstEventSequence": 1,
            "lastEventSequence": max(len(events), 1),
            "entropy": uuid.uuid4().hex.upper(),
        }
    ).encode()


def invoice_event(system: System, invoice_id: str) -> dict[str, object]:
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}",
        "resourceId": invoice_id,
        "eventDateUtc": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "eventType": "UPDATE",
        "eventCategory": "INVOICE",
        "tenantId": system.settings.xero_tenant_id,
        "tenantType": "ORGANISATION",
    }


def post(system: System, body: bytes, signed_with: str | None) -> httpx.Response:
    assert system.ingress is not None
    headers = {"Content-Type": "application/json"}
    if signed_with is not None:
        headers["x-xero-signature"] = signature(body, signed_with)
    return httpx.post(f"{system.ingress.url}/webhooks/xero", content=body, headers=headers)


async def test_intent_to_receive_is_answered_200_for_a_good_signature_and_401_for_a_bad_one(
    system: System,
) -> None:
    body = payload(system, [])
    assert post(system, body, system.settings.xero_webhook_key.get_secret_value()).status_code == 200
    refused = post(system, body, "some-other-key")
    assert refused.status_code == 401 and refused.content == b""


async def test_webhook_without_signature_gets_401(system: System) -> None:
    assert post(system, payload(system, [invoice_event(system, str(uuid.uuid4()))]), None).status_code == 401


async def test_signed_but_malformed_webhook_gets_422_naming_the_field(system: System) -> None:
    event = invoice_event(system, str(uuid.uuid4()))
    del event["resourceId"]
    response = post(system, payload(system, [event]), system.settings.xero_webhook_key.get_secret_value())
    assert response.status_code == 422
    assert "resourceId" in response.text


async def test_event_about_an_invoice_ps_sync_does_not_follow_is_accepted_and_ignored(system: System) -> None:
    response = post(
        system,
        payload(system, [invoice_event(system, str(uuid.uuid4()))]),
        system.settings.xero_webhook_key.get_secret_value(),
    )
    assert response.status_code == 200
