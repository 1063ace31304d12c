"""What the ingress refuses before any work is done, and how it answers when Temporal is out of reach: body
size (413, without reading on), media type (415), JSON nesting (400), integers too large for a ledger id,
Salesforce ids, codec bodies, 503 with Retry-After, and a rendered traceback for anything unexpected.

In-process, on a stand-in Temporal client (tests/ingress/inprocess.py).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from temporalio.api.common.v1 import Payload
from temporalio.service import RPCError, RPCStatusCode

from config import Settings
from connectors.salesforce.outbound import is_salesforce_id
from connectors.xero.webhooks import signature
from ingress import limits
from ingress.limits import json_depth
from ledger.repository import open_exception
from observability.logging import configure_logging
from runs.codec import EncryptionCodec
from runs.opportunity_to_project import workflow_id
from sandboxes.salesforce.outbound import render_envelope

from .inprocess import Ingress, bearer, ingress_in_process, migrated_ledger, settings_for, static_token

SALESFORCE = "/webhooks/salesforce/outbound-messages"
SOAP = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
JSON = {"Content-Type": "application/json"}
OPPORTUNITY = "0068d0000099901AAA"


@pytest.fixture
async def ingress(tmp_path: Path) -> AsyncIterator[Ingress]:
    settings = settings_for(tmp_path)
    migrated_ledger(settings)
    async with ingress_in_process(settings) as running:
        yield running


def envelope(ingress: Ingress, opportunity_id: str = OPPORTUNITY, *, org_id: str | None = None) -> bytes:
    return envelope_for(ingress.settings, opportunity_id, org_id=org_id)


def envelope_for(
    settings: Settings, opportunity_id: str = OPPORTUNITY, *, org_id: str | None = None
) -> bytes:
    return render_envelope(
        org_id=org_id or settings.salesforce_org_id,
        action_id="04k8d0000000001AAA",
        base_url=settings.salesforce_base_url,
        api_version="v62.0",
        notifications=[
            (
                f"04l8d{uuid.uuid4().hex[:13]}",
                "Opportunity",
                {"Id": opportunity_id, "StageName": "Closed Won", "IsWon": True},
            )
        ],
        fields=["Id", "StageName", "IsWon"],
    )


def outbound_url(ingress: Ingress) -> str:
    return outbound_url_for(ingress.settings)


def outbound_url_for(settings: Settings) -> str:
    return f"{SALESFORCE}?token={settings.salesforce_outbound_token.get_secret_value()}"


def xero_headers(ingress: Ingress, body: bytes) -> dict[str, str]:
    key = ingress.settings.xero_webhook_key.get_secret_value()
    return {**JSON, "x-xero-signature": signature(body, key)}


class Chunks:
    """A streamed request body (no Content-Length) that counts how much of it the server pulled."""

    def __init__(self, chunk: bytes, count: int) -> None:
        self.chunk, self.count, self.pulled = chunk, count, 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield self.chunk


# --- body size ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "content_type", "limit"),
    [
        (SALESFORCE + "?token=dev-outbound-token", "text/xml", limits.SALESFORCE_OUTBOUND_MAX_BYTES),
        ("/webhooks/xero", "application/json", limits.XERO_WEBHOOK_MAX_BYTES),
        ("/exceptions/1/retry", "application/json", limits.JSON_API_MAX_BYTES),
        ("/codec/decode", "application/json", limits.CODEC_MAX_BYTES),
    ],
)
async def test_a_streamed_body_is_read_only_up_to_the_limit_then_413(
    ingress: Ingress, path: str, content_type: str, limit: int
) -> None:
    chunk = b" " * (16 * 1024)
    body = Chunks(chunk, count=limit // len(chunk) * 50)
    headers = {"Content-Type": content_type, "x-xero-signature": "c2ln", **bearer(ingress.settings, "ops")}
    response = await ingress.http.post(path, content=body, headers=headers)
    assert response.status_code == 413
    # The chunk that crossed the limit is the last one pulled.
    assert body.pulled == limit // len(chunk) + 1
    assert not ingress.temporal.calls


async def test_a_declared_content_length_over_the_limit_is_refused_before_reading(ingress: Ingress) -> None:
    body = Chunks(b"{}", count=10)
    response = await ingress.http.post(
        "/exceptions/1/retry",
        content=body,
        headers={
            **JSON,
            "Content-Length": str(limits.JSON_API_MAX_BYTES + 1),
            **bearer(ingress.settings, "ops"),
        },
    )
    assert response.status_code == 413 and "65536 bytes" in response.json()["detail"]
    assert body.pulled == 0


async def test_an_oversized_outbound_message_is_a_soap_fault_and_starts_nothing(ingress: Ingress) -> None:
    padding = b"<!--" + b"x" * limits.SALESFORCE_OUTBOUND_MAX_BYTES + b"-->"
    response = await ingress.http.post(
        outbound_url(ingress), content=envelope(ingress) + padding, headers=SOAP
    )
    assert response.status_code == 413 and b"<faultstring>" in response.content
    assert not ingress.temporal.calls


async def test_a_body_at_the_limit_is_accepted(ingress: Ingress) -> None:
    message = envelope(ingress)
    padded = message + b" " * (limits.SALESFORCE_OUTBOUND_MAX_BYTES - len(message))
    response = await ingress.http.post(outbound_url(ingress), content=padded, headers=SOAP)
    assert response.status_code == 200, response.text
    assert [call.kind for call in ingress.temporal.calls] == ["start"]


async def test_an_unsigned_xero_webhook_is_refused_without_reading_its_body(ingress: Ingress) -> None:
    body = Chunks(b"{}", count=10)
    response = await ingress.http.post("/webhooks/xero", content=body, headers=JSON)
    assert response.status_code == 401 and response.content == b""
    assert body.pulled == 0


# --- media types ----------------------------------------------------------------------------------------


async def test_an_outbound_message_must_be_text_xml(ingress: Ingress) -> None:
    for content_type in ("application/json", "application/soap+xml", "text/plain", ""):
        response = await ingress.http.post(
            outbound_url(ingress), content=envelope(ingress), headers={"Content-Type": content_type}
        )
        assert response.status_code == 415 and b"text/xml" in response.content, content_type
    assert not ingress.temporal.calls


async def test_json_endpoints_refuse_other_media_types(ingress: Ingress) -> None:
    body = b'{"note": "x"}'
    for path in ("/exceptions/1/retry", "/codec/decode", "/webhooks/xero"):
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
            response = await ingress.http.post(
                path, content=body, headers={"Content-Type": content_type, **bearer(ingress.settings, "ops")}
            )
            assert response.status_code == 415, (path, content_type)
    charset = await ingress.http.post(
        "/exceptions/1/retry",
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8", **bearer(ingress.settings, "ops")},
    )
    assert charset.status_code == 404


# --- JSON nesting ---------------------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b'{"note": ' + b"[" * depth + b"]" * depth + b"}"


def test_depth_counts_brackets_outside_strings_only() -> None:
    assert json_depth(b'{"a": [1, {"b": "[[[{{{"}], "c": "\\"]]]"}') == 3
    assert json_depth(b"[]" * 1000) == 1
    assert json_depth(b"17") == 0


async def test_deeply_nested_json_is_400_on_a_json_api(ingress: Ingress) -> None:
    headers = {**JSON, **bearer(ingress.settings, "ops")}
    for depth in (33, 1000, 30000):
        response = await ingress.http.post(
            "/exceptions/1/retry", content=nested(depth)[:60000], headers=headers
        )
        assert response.status_code == 400 and "nested" in response.json()["detail"], depth
    # Within the limit the body reaches the endpoint (and its own validation).
    assert (
        await ingress.http.post("/exceptions/1/retry", content=nested(30), headers=headers)
    ).status_code == 422


async def test_deeply_nested_xero_webhook_is_400_once_signed_and_401_unsigned(ingress: Ingress) -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    body = body[: limits.XERO_WEBHOOK_MAX_BYTES]
    signed = await ingress.http.post("/webhooks/xero", content=body, headers=xero_headers(ingress, body))
    assert signed.status_code == 400 and b"nested" in signed.content
    forged = await ingress.http.post(
        "/webhooks/xero", content=body, headers={**JSON, "x-xero-signature": "AAAA"}
    )
    assert forged.status_code == 401 and forged.content == b""
    assert not ingress.temporal.calls


async def test_a_signed_xero_webhook_with_an_overlong_integer_is_422(ingress: Ingress) -> None:
    body = (
        b'{"events": [], "firstEventSequence": ' + b"9" * 5000 + b', "lastEventSequence": 0, "entropy": "x"}'
    )
    response = await ingress.http.post("/webhooks/xero", content=body, headers=xero_headers(ingress, body))
    assert response.status_code == 422 and b"not JSON" in response.content


# --- integers in paths ----------------------------------------------------------------------------------


async def test_an_exception_id_beyond_64_bits_is_422_and_the_largest_is_404(ingress: Ingress) -> None:
    headers = bearer(ingress.settings, "ops")
    for path in ("/exceptions/99999999999999999999999", "/exceptions/9223372036854775808", "/exceptions/-1"):
        response = await ingress.http.get(path, headers=headers)
        assert response.status_code == 422, path
    huge = await ingress.http.post(
        "/exceptions/99999999999999999999999/skip", json={"reason": "dup"}, headers=headers
    )
    assert huge.status_code == 422
    assert (await ingress.http.get(f"/exceptions/{2**63 - 1}", headers=headers)).status_code == 404


# --- Salesforce ids -------------------------------------------------------------------------------------


def test_salesforce_ids_are_15_or_18_alphanumerics_with_a_matching_checksum() -> None:
    assert is_salesforce_id("0068d0000099901AAA") and is_salesforce_id("0068d0000099901")
    assert is_salesforce_id("00D000000000001EAA")
    assert not is_salesforce_id("00D000000000001AAA")  # the checksum of "00D00..." is "EAA"
    assert is_salesforce_id("00D000000000001AAA", checksum=False)
    for bad in (
        "",
        "0068d000009990",
        "0068d0000099901AA",
        "0068d0000099901AAAA",
        "0068d00000999-1",
        "ééééééééééééééé",
    ):
        assert not is_salesforce_id(bad), bad


@pytest.mark.parametrize(
    "opportunity_id",
    ["../../x' OR 1=1 --", "0068d00000999", "0068d0000099901AAA0", "0068d 000099901", "0068d/00009990"],
)
async def test_an_outbound_message_with_a_bad_sobject_id_is_refused_and_starts_nothing(
    ingress: Ingress, opportunity_id: str
) -> None:
    response = await ingress.http.post(
        outbound_url(ingress), content=envelope(ingress, opportunity_id), headers=SOAP
    )
    assert response.status_code == 422 and b"is not a Salesforce id" in response.content
    assert b"<soapenv:Fault>" in response.content
    assert not ingress.temporal.calls


async def test_an_outbound_message_with_a_bad_org_id_is_refused(ingress: Ingress) -> None:
    response = await ingress.http.post(
        outbound_url(ingress), content=envelope(ingress, org_id="00D000000000001AAA"), headers=SOAP
    )
    assert response.status_code == 422 and b"OrganizationId" in response.content
    assert not ingress.temporal.calls


async def test_a_15_character_opportunity_id_starts_the_run(ingress: Ingress) -> None:
    response = await ingress.http.post(
        outbound_url(ingress), content=envelope(ingress, OPPORTUNITY[:15]), headers=SOAP
    )
    assert response.status_code == 200
    assert [call.workflow_id for call in ingress.temporal.starts()] == [
        workflow_id("salesforce", OPPORTUNITY[:15])
    ]


# --- the codec server -----------------------------------------------------------------------------------


async def sealed(ingress: Ingress, text: str) -> dict[str, Any]:
    [payload] = await EncryptionCodec.from_settings(ingress.settings).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=text.encode())]
    )
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


async def decode(ingress: Ingress, body: bytes) -> Any:
    return await ingress.http.post(
        "/codec/decode", content=body, headers={**JSON, **static_token(ingress.settings, "ops")}
    )


async def test_the_codec_refuses_bad_bodies_with_400_naming_the_problem(ingress: Ingress) -> None:
    good = await sealed(ingress, '"hello"')
    short = {**good, "data": base64.b64encode(base64.b64decode(good["data"])[:20]).decode()}
    altered_bytes = bytearray(base64.b64decode(good["data"]))
    altered_bytes[-1] ^= 1
    altered = {**good, "data": base64.b64encode(bytes(altered_bytes)).decode()}
    other_key = {
        **good,
        "metadata": {**good["metadata"], "encryption-key-id": base64.b64encode(b"retired-2019").decode()},
    }
    cases = {
        b"17": "got a number",
        b'"payloads"': "got a string",
        b"[]": "got an array",
        b"null": "got null",
        b"{": "body is not JSON",
        b"\xff\xfe": "body is not JSON",
        json.dumps({"payloads": [short]}).encode(): "shorter than a nonce and tag",
        json.dumps({"payloads": [altered]}).encode(): "could not be decrypted",
        json.dumps({"payloads": [other_key]}).encode(): "'retired-2019', which is not configured",
    }
    for body, message in cases.items():
        response = await decode(ingress, body)
        assert response.status_code == 400, (body[:40], response.text)
        assert message in response.json()["detail"], (message, response.text)
    # A well-formed JSON object of the wrong shape is still a validation failure, and a good one decodes.
    assert (await decode(ingress, b'{"payloads": "nope"}')).status_code == 422
    decoded = await decode(ingress, json.dumps({"payloads": [good]}).encode())
    assert decoded.status_code == 200
    assert base64.b64decode(decoded.json()["payloads"][0]["data"]) == b'"hello"'


async def test_non_ascii_credentials_are_refused_not_failed_on(ingress: Ingress) -> None:
    # Header values arrive as latin-1 text, query values as any text: both can hold non-ASCII characters.
    codec = await ingress.http.post(
        "/codec/decode",
        content=b'{"payloads": []}',
        headers={b"Content-Type": b"application/json", b"Authorization": b"Bearer caf\xe9"},
    )
    assert codec.status_code == 401
    outbound = await ingress.http.post(
        f"{SALESFORCE}?token=caf%C3%A9", content=envelope(ingress), headers=SOAP
    )
    assert outbound.status_code == 401
    assert not ingress.temporal.calls


# --- Temporal unreachable -------------------------------------------------------------------------------


async def test_healthz_is_503_with_retry_after_while_temporal_is_down(ingress: Ingress) -> None:
    assert (await ingress.http.get("/healthz")).status_code == 200
    ingress.temporal.down = True
    response = await ingress.http.get("/healthz")
    assert response.status_code == 503 and int(response.headers["retry-after"]) > 0
    assert "Temporal is unavailable" in response.json()["detail"]


async def test_people_endpoints_are_503_with_retry_after_while_temporal_is_down(ingress: Ingress) -> None:
    with migrated_ledger(ingress.settings).session() as session:
        item = open_exception(
            session,
            dedupe_key="time_to_billing:P1:2026-10:no_rate:time_entry",
            process="time_to_billing",
            owner="finance",
            reason="no rate for role 'Architect'",
            record={"project_id": "P1", "period": "2026-10", "kind": "time_entry", "ids": ["1"]},
        )
    ingress.temporal.down = True
    finance = bearer(ingress.settings, "finance")
    decision = {"invoice_version": "v3", "expected_total": {"amount": "6000.00", "currency": "GBP"}}
    requests = [
        ("POST", "/billing-runs/P1/2026-10/approve", decision, finance),
        ("POST", "/billing-runs/P1/2026-10/reject", {**decision, "reason": "wrong rate"}, finance),
        ("GET", "/approvals", None, finance),
        (
            "POST",
            "/invoices/xero/INV-1/write-off",
            {"reason": "bad debt", "expected_due": {"amount": "10.00", "currency": "GBP"}},
            finance,
        ),
        ("POST", f"/exceptions/{item.id}/retry", {}, bearer(ingress.settings, "ops")),
    ]
    for method, path, body, headers in requests:
        response = await ingress.http.request(method, path, json=body, headers=headers)
        assert response.status_code == 503, (path, response.text)
        assert int(response.headers["retry-after"]) > 0, path
    outbound = await ingress.http.post(outbound_url(ingress), content=envelope(ingress), headers=SOAP)
    assert outbound.status_code == 503 and int(outbound.headers["retry-after"]) > 0
    assert b"<soapenv:Fault>" in outbound.content


async def test_an_unhandled_temporal_outage_is_503_and_a_refusal_502(ingress: Ingress) -> None:
    async def outage() -> None:
        raise RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b"")

    async def refusal() -> None:
        raise RPCError("bad id", RPCStatusCode.INVALID_ARGUMENT, b"")

    async def timeout() -> None:
        raise ConnectionResetError("reset by peer")

    ingress.app.add_api_route("/test/outage", outage)
    ingress.app.add_api_route("/test/refusal", refusal)
    ingress.app.add_api_route("/test/timeout", timeout)
    outage_response = await ingress.http.get("/test/outage")
    assert outage_response.status_code == 503 and outage_response.headers["retry-after"]
    assert (await ingress.http.get("/test/refusal")).status_code == 502
    assert (await ingress.http.get("/test/timeout")).status_code == 503


# --- the last resort ------------------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    previous = structlog.get_config()
    stream = io.StringIO()
    configure_logging("INFO", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**previous)


async def test_an_unexpected_exception_is_a_generic_500_with_the_traceback_rendered_in_the_log(
    ingress: Ingress, json_log: io.StringIO
) -> None:
    def broken_helper() -> None:
        raise ValueError("the secret detail callers must not see")

    async def broken() -> None:
        broken_helper()

    ingress.app.add_api_route("/test/broken", broken)
    response = await ingress.http.get("/test/broken")
    assert response.status_code == 500 and response.json() == {"detail": "internal error"}
    lines = [json.loads(line) for line in json_log.getvalue().splitlines()]
    [logged] = [line for line in lines if line["event"] == "unhandled_exception"]
    assert logged["path"] == "/test/broken" and logged["level"] == "error"
    assert logged["exception"].startswith("Traceback (most recent call last)")
    assert "in broken_helper" in logged["exception"]
    assert "ValueError: the secret detail callers must not see" in logged["exception"]
    assert "<traceback object" not in json_log.getvalue()


async def test_the_ops_page_refuses_a_non_ascii_bearer_token_without_failing(ingress: Ingress) -> None:
    response = await ingress.http.get("/ops", headers={b"Authorization": b"Bearer caf\xe9"})
    assert response.status_code == 401
