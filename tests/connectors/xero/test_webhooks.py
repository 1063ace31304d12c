"""Xero webhooks: signature checks and payload parsing (what the ingress uses), and the sandbox's delivery
of signed INVOICE and CONTACT events, the intent-to-receive handshake, retries, duplicates and reordering.
Every delivered payload is validated against xero-webhooks.yaml."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI, Request, Response

from canonical import Account, LegalEntity
from connectors.xero import (
    SIGNATURE_HEADER,
    MalformedWebhook,
    XeroConnector,
    parse_webhook,
    signature,
    verify_signature,
)
from sandboxes.faults import FaultConfig
from sandboxes.serve import serve_in_thread
from sandboxes.xero import WebhookConfig
from sandboxes.xero.control import XeroSandboxControl

from ..contract.erp_contract import build_invoice, net_thousand_lines
from ..specs import SpecViolation, validate_xero_webhook
from .conftest import TEST_WEBHOOKS

KEY = "dev-xero-webhook-key"
BODY = (
    b'{"events":[{"resourceUrl":"https://api.xero.com/api.xro/2.0/Invoices/717f2bfc-c6d4-41fd-b238-3f2f0c0cf777",'
    b'"resourceId":"717f2bfc-c6d4-41fd-b238-3f2f0c0cf777","eventDateUtc":"2024-06-21T01:15:39.902",'
    b'"eventType":"UPDATE","eventCategory":"INVOICE","tenantId":"c2cc9b6e-9458-4c7d-93cc-f02b81b0594f",'
    b'"tenantType":"ORGANISATION"}],"lastEventSequence":1,"firstEventSequence":1,"entropy":"S0m3r4Nd0mt3xt"}'
)


# --- signatures and parsing (no network) ------------------------------------------------------------------


def test_signature_is_base64_hmac_sha256_of_the_raw_body() -> None:
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(KEY.encode(), BODY, hashlib.sha256).digest()).decode()

    assert signature(BODY, KEY) == expected
    assert verify_signature(BODY, expected, KEY)


@pytest.mark.parametrize(
    ("header", "body", "key"),
    [
        pytest.param(None, BODY, KEY, id="missing"),
        pytest.param("", BODY, KEY, id="empty"),
        pytest.param(signature(BODY, "another-key"), BODY, KEY, id="wrong-key"),
        pytest.param(signature(BODY, KEY), BODY.replace(b"UPDATE", b"CREATE"), KEY, id="tampered-body"),
        pytest.param(signature(BODY, KEY), BODY + b" ", KEY, id="re-serialised-body"),
        pytest.param("not base64 at all!", BODY, KEY, id="garbage"),
        pytest.param(signature(BODY, KEY), BODY, "", id="no-key-configured"),
    ],
)
def test_signature_check_refuses_anything_but_the_exact_signature(
    header: str | None, body: bytes, key: str
) -> None:
    assert verify_signature(body, header, key) is False


def test_parse_webhook_reads_events_sequences_and_entropy() -> None:
    webhook = parse_webhook(BODY)

    assert webhook.first_event_sequence == webhook.last_event_sequence == 1
    assert webhook.entropy == "S0m3r4Nd0mt3xt"
    assert not webhook.is_intent_to_receive
    event = webhook.events[0]
    assert (event.event_category, event.event_type, event.resource_id) == (
        "INVOICE",
        "UPDATE",
        "717f2bfc-c6d4-41fd-b238-3f2f0c0cf777",
    )
    assert event.event_date_utc.utcoffset() is not None and event.event_date_utc.hour == 1


def test_intent_to_receive_payload_is_recognised() -> None:
    webhook = parse_webhook(b'{"events":[],"lastEventSequence":0,"firstEventSequence":0,"entropy":"X"}')

    assert webhook.is_intent_to_receive


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        pytest.param(b"{not json", "not JSON", id="not-json"),
        pytest.param(b"[]", "must be a JSON object", id="array"),
        pytest.param(
            b'{"events":[],"firstEventSequence":0,"lastEventSequence":0}', "entropy", id="no-entropy"
        ),
        pytest.param(BODY.replace(b'"INVOICE"', b'"PAYMENT"'), "eventCategory", id="unknown-category"),
    ],
)
def test_malformed_webhook_bodies_raise_a_specific_error(body: bytes, complaint: str) -> None:
    with pytest.raises(MalformedWebhook, match=complaint):
        parse_webhook(body)


def test_webhook_spec_validation_refuses_a_payload_outside_the_schema() -> None:
    validate_xero_webhook(BODY, {"content-type": "application/json"})
    missing_events = json.dumps({"firstEventSequence": 1, "lastEventSequence": 1, "entropy": "x"}).encode()

    with pytest.raises(SpecViolation, match="events"):
        validate_xero_webhook(missing_events, {"content-type": "application/json"})


# --- delivery from the sandbox ----------------------------------------------------------------------------


@dataclass
class Listener:
    """A webhook receiver like the ingress's: 401 on a bad signature, 200 with no body otherwise."""

    url: str
    key: str = KEY
    received: list[dict[str, object]] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # statuses to answer first (failure injection)
    check_signature: bool = True


@pytest.fixture
def listener() -> Iterator[Listener]:
    app = FastAPI()
    state = Listener(url="")

    @app.post("/webhooks/xero")
    async def receive(request: Request) -> Response:
        raw = await request.body()
        if state.check_signature and not verify_signature(
            raw, request.headers.get(SIGNATURE_HEADER), state.key
        ):
            return Response(status_code=401)
        if state.answers:
            return Response(status_code=state.answers.pop(0))
        validate_xero_webhook(raw, dict(request.headers))
        state.received.append(json.loads(raw))
        return Response(status_code=200)

    served = serve_in_thread(app)
    state.url = f"{served.url}/webhooks/xero"
    yield state
    served.stop()


def _events(listener: Listener) -> list[dict[str, object]]:
    return [event for payload in listener.received for event in payload["events"]]  # type: ignore[attr-defined]


async def test_contact_and_invoice_changes_are_delivered_as_signed_events(
    listener: Listener,
    control: XeroSandboxControl,
    erp: XeroConnector,
    entity: LegalEntity,
    seed_account: Account,
) -> None:
    await control.set_webhooks(TEST_WEBHOOKS.model_copy(update={"url": listener.url}))
    contact_id = await erp.create_customer(
        seed_account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}"
    )
    posted = await erp.post_invoice(
        build_invoice(entity, seed_account, contact_id, net_thousand_lines(entity)),
        entity=entity,
        idempotency_key=f"test:{uuid.uuid4()}",
    )
    await erp.void_invoice(posted.invoice_id)
    await control.flush_webhooks()

    seen = [(e["eventCategory"], e["eventType"], e["resourceId"]) for e in _events(listener)]
    assert ("CONTACT", "CREATE", contact_id) in seen
    assert ("INVOICE", "CREATE", posted.invoice_id) in seen
    assert ("INVOICE", "UPDATE", posted.invoice_id) in seen
    for payload in listener.received:
        sequences = [payload["firstEventSequence"], payload["lastEventSequence"]]
        assert 1 <= sequences[0] <= sequences[1]  # type: ignore[operator]
        assert payload["entropy"]


async def test_intent_to_receive_passes_for_a_listener_that_checks_signatures(
    listener: Listener, control: XeroSandboxControl
) -> None:
    await control.set_webhooks(TEST_WEBHOOKS.model_copy(update={"url": listener.url}))

    result = await control.intent_to_receive()

    assert result["status"] == "OK"
    assert [(c["correctly_signed"], c["status"]) for c in result["checks"]] == [
        (True, 200),
        (False, 401),
        (True, 200),
        (False, 401),
    ]
    assert (await control.stats())["webhooks"]["intent_to_receive"] == "OK"


async def test_intent_to_receive_fails_for_a_listener_that_accepts_bad_signatures(
    listener: Listener, control: XeroSandboxControl
) -> None:
    listener.check_signature = False
    await control.set_webhooks(TEST_WEBHOOKS.model_copy(update={"url": listener.url}))

    result = await control.intent_to_receive()

    assert result["status"] == "FAILED"
    assert [c["ok"] for c in result["checks"]] == [True, False, True, False]


async def test_failed_deliveries_are_retried_until_the_listener_accepts(
    listener: Listener,
    control: XeroSandboxControl,
    erp: XeroConnector,
    entity: LegalEntity,
    seed_account: Account,
) -> None:
    listener.answers = [500, 503]
    await control.set_webhooks(TEST_WEBHOOKS.model_copy(update={"url": listener.url}))

    contact_id = await erp.create_customer(
        seed_account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}"
    )
    snapshot = await control.flush_webhooks()

    assert [e["resourceId"] for e in _events(listener)] == [contact_id]
    deliveries = [d for d in await control.webhook_deliveries() if contact_id in d["body"]]
    assert [(d["attempt"], d["status"]) for d in deliveries] == [(1, 500), (2, 503), (3, 200)]
    assert snapshot["delivered"] >= 1


async def test_fault_plan_duplicates_and_reorders_event_deliveries(
    listener: Listener, control: XeroSandboxControl, erp: XeroConnector, entity: LegalEntity
) -> None:
    await control.set_webhooks(
        WebhookConfig(
            url=listener.url, batch_window_ms=200, max_events_per_payload=1, retry_delays_seconds=(0.05,)
        )
    )
    await control.set_faults(FaultConfig(seed=3, duplicate_event_rate=1.0, reorder_events=True))
    created = []
    for n in range(4):
        account = Account(
            id=f"001WH{uuid.uuid4().hex[:10]}", name=f"Webhook Customer {n} {uuid.uuid4().hex[:6]}"
        )
        created.append(
            await erp.create_customer(account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")
        )
    await control.flush_webhooks()

    sequences = [p["firstEventSequence"] for p in listener.received]
    ids = [e["resourceId"] for e in _events(listener)]
    assert sorted(set(ids)) == sorted(created)
    assert len(ids) == 2 * len(created), "every event delivered twice"
    assert sequences != sorted(sequences), "deliveries arrive out of order"
