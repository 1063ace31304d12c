"""Fuzzing the ingress from outside: no input may reach a 5xx, and none that is unauthenticated or refused may
start or change a run.

Every operation of the OpenAPI document gets hypothesis-generated path segments, query parameters, headers
and bodies (built from the operation's schema, random JSON, deep nesting and raw bytes); the webhooks also
get mutations of a valid delivery (a Salesforce outbound message; a Xero webhook, signed over the mutated
bytes), and the codec mutations of a real encrypted payload. In-process on a stand-in Temporal client that
records what would start or change a run; about 1,700 requests in all, in seconds.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.common.v1 import Payload

from config import Settings
from connectors.salesforce.outbound import OUTBOUND_NS, SOAP_ENV_NS, is_salesforce_id
from connectors.xero.webhooks import signature
from ingress.app import create_app
from ledger.repository import open_exception
from runs.codec import EncryptionCodec
from sandboxes.salesforce.outbound import render_envelope

from .inprocess import Call, Ingress, bearer, ingress_in_process, migrated_ledger, settings_for, static_token

SALESFORCE = "/webhooks/salesforce/outbound-messages"
EXAMPLES_PER_OPERATION = 50
WEBHOOK_EXAMPLES = 300
CODEC_EXAMPLES = 200
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)

OPENAPI = create_app(Settings(environment="test")).openapi()
COMPONENTS: dict[str, Any] = OPENAPI["components"]["schemas"]
OPERATIONS = [
    (method.upper(), path, operation)
    for path, methods in OPENAPI["paths"].items()
    for method, operation in methods.items()
]


# --- tally ----------------------------------------------------------------------------------------------


@dataclass
class Tally:
    requests: int = 0
    server_errors: int = 0
    started: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int) -> None:
        self.requests += 1
        self.server_errors += status >= 500
        self.statuses[status] = self.statuses.get(status, 0) + 1


TALLY = Tally()


@pytest.fixture(scope="module", autouse=True)
def report(request: pytest.FixtureRequest) -> Iterator[None]:
    TALLY.started = time.monotonic()
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not TALLY.requests:
        return
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(TALLY.statuses.items()))
    with capture.global_and_fixture_disabled():
        reporter.write_line(
            f"\ningress fuzz: {TALLY.requests} requests in {time.monotonic() - TALLY.started:.1f} s, "
            f"{TALLY.server_errors} x 5xx ({statuses})"
        )


# --- the ingress ----------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def ingress(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ingress]:
    settings = settings_for(tmp_path_factory.mktemp("fuzz"))
    # One open item, so that exception actions on id 1 get past the lookup.
    with migrated_ledger(settings).session() as session:
        open_exception(
            session,
            dedupe_key="time_to_billing:P1:2026-10:no_rate:time_entry",
            process="time_to_billing",
            owner="finance",
            reason="no rate for role 'Architect'",
            record={"project_id": "P1", "period": "2026-10", "kind": "time_entry", "ids": ["1"]},
        )
    async with ingress_in_process(settings) as running:
        yield running


async def send(
    ingress: Ingress, method: str, url: str, *, content: bytes | None, headers: dict[str, str]
) -> tuple[httpx.Response, list[Call]]:
    before = len(ingress.temporal.calls)
    response = await ingress.http.request(method, url, content=content, headers=headers)
    TALLY.count(response.status_code)
    calls = ingress.temporal.calls[before:]
    assert response.status_code < 500, (
        f"{method} {url[:200]} -> {response.status_code}: {response.text[:500]}"
    )
    if 400 <= response.status_code < 500:
        assert not [call for call in calls if call.kind == "start"], (url[:200], calls)
    return response, calls


# --- values ---------------------------------------------------------------------------------------------

TEXT = st.text(max_size=30)
NASTY = st.sampled_from(
    [
        "",
        " ",
        "1",
        "0",
        "-1",
        "../../x' OR 1=1 --",
        "9" * 30,
        str(2**63),
        str(2**63 - 1),
        "1e999",
        "NaN",
        "\x00",
        "é",
        "😀",
        "a" * 2000,
        "null",
        "%2e%2e%2f",
        "2026-10",
        "0068d0000099901AAA",
    ]
)
SEGMENT = st.one_of(TEXT, NASTY, st.integers().map(str))
LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30, max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    NASTY,
)
JSON_VALUE = st.recursive(
    LEAF,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=12,
)
DEEP = st.integers(min_value=30, max_value=3000).flatmap(
    lambda n: st.sampled_from([b"[" * n + b"]" * n, b'{"a":' * n + b"1" + b"}" * n, b"[" * n])
)
HUGE_INT = st.integers(min_value=4300, max_value=6000).map(lambda n: b'{"a": ' + b"7" * n + b"}")


def from_schema(schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values shaped by a JSON Schema from the OpenAPI document: mostly valid, sometimes not."""
    if "$ref" in schema:
        return from_schema(COMPONENTS[schema["$ref"].rsplit("/", 1)[-1]], depth)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return st.one_of([from_schema(option, depth) for option in schema[key]])
    if "allOf" in schema:
        return from_schema(schema["allOf"][0], depth)
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), TEXT)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return st.just({})
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: from_schema(sub, depth + 1) for name, sub in properties.items() if name in required},
            optional={
                name: from_schema(sub, depth + 1) for name, sub in properties.items() if name not in required
            }
            | {"unexpected": JSON_VALUE},
        )
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {}), depth + 1), max_size=3)
    if kind == "string":
        if schema.get("format") == "date-time":
            return st.one_of(st.datetimes().map(lambda value: value.isoformat()), TEXT)
        return st.one_of(TEXT, NASTY, st.decimals(allow_nan=False, allow_infinity=False).map(str))
    if kind == "integer":
        return st.one_of(st.integers(), st.integers(min_value=2**63 - 2, max_value=2**70))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return JSON_VALUE


def dumps(value: Any) -> bytes:
    return json.dumps(value).encode()


ROLES = ("finance", "ops", "pmo", "sales_ops")


def credentials(settings: Settings) -> st.SearchStrategy[tuple[bool, dict[str, str]]]:
    """(authenticated, headers): a person's or a static token of some role, or nothing that verifies."""
    person = st.sampled_from(ROLES).map(lambda role: (True, bearer(settings, role)))
    static = st.sampled_from(("ops", "finance")).map(lambda role: (True, static_token(settings, role)))
    nobody: dict[str, str] = {}
    junk = st.one_of(
        st.just(nobody),
        st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=40).map(
            lambda token: {"Authorization": f"Bearer {token}"}
        ),
        st.sampled_from([{"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer"}]),
    ).map(lambda headers: (False, headers))
    return st.one_of(person, static, junk)


CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json",
        "application/json",
        "application/json; charset=utf-8",
        "text/plain",
        "text/xml",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "",
    ]
)


def request_body(operation: dict[str, Any]) -> st.SearchStrategy[bytes | None]:
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    shaped = from_schema(schema).map(dumps) if schema else JSON_VALUE.map(dumps)
    return st.one_of(
        shaped, shaped, JSON_VALUE.map(dumps), DEEP, HUGE_INT, st.binary(max_size=200), st.none()
    )


def query_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    return st.one_of(
        SEGMENT, from_schema(schema).map(lambda value: value if isinstance(value, str) else json.dumps(value))
    )


# --- every operation of the OpenAPI document ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "operation"), OPERATIONS, ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
@FUZZ
@given(data=st.data())
async def test_no_generated_request_reaches_a_5xx_or_starts_a_run_it_should_not(
    ingress: Ingress, method: str, path: str, operation: dict[str, Any], data: st.DataObject
) -> None:
    parameters = operation.get("parameters", [])
    url = path
    for parameter in (p for p in parameters if p["in"] == "path"):
        value = data.draw(SEGMENT, label=parameter["name"])
        url = url.replace("{" + parameter["name"] + "}", quote(value, safe="") or "%20")
    query = {
        parameter["name"]: data.draw(query_value(parameter["schema"]), label=parameter["name"])
        for parameter in parameters
        if parameter["in"] == "query" and data.draw(st.booleans())
    }
    if data.draw(st.booleans()):
        query[data.draw(TEXT, label="unknown")] = data.draw(SEGMENT)
    authenticated, headers = data.draw(credentials(ingress.settings), label="credentials")
    body = data.draw(request_body(operation), label="body") if method == "POST" else None
    if body is not None:
        content_type = data.draw(CONTENT_TYPES, label="content-type")
        if content_type:
            headers = {**headers, "Content-Type": content_type}
    if path == "/webhooks/xero" and data.draw(st.booleans()):
        headers = {
            **headers,
            "x-xero-signature": data.draw(TEXT.map(lambda t: base64.b64encode(t.encode()).decode())),
        }
    encoded = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query.items())
    response, calls = await send(
        ingress, method, f"{url}?{encoded}" if encoded else url, content=body, headers=headers
    )
    changes = [call for call in calls if call.kind in ("start", "signal", "update")]
    if not authenticated:
        # Webhooks authenticate by a token in the URL or a signature; random ones never match.
        assert not changes, (url, response.status_code, changes)


# --- Salesforce outbound messages -----------------------------------------------------------------------


def outbound(settings: Settings, opportunity_id: str = "0068d0000099901AAA") -> str:
    return render_envelope(
        org_id=settings.salesforce_org_id,
        action_id="04k8d0000000001AAA",
        base_url=settings.salesforce_base_url,
        api_version="v62.0",
        notifications=[
            (
                f"04l8d{uuid.uuid4().hex[:13]}",
                "Opportunity",
                {"Id": opportunity_id, "StageName": "Closed Won", "IsWon": True},
            ),
            ("04l8d0000000002AAA", "Opportunity", {"Id": "0068d0000099902AAA", "StageName": "Prospecting"}),
        ],
        fields=["Id", "StageName", "IsWon"],
    ).decode()


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


Mutation = Callable[[str], str]


@st.composite
def soap_mutation(draw: st.DrawFn) -> Mutation:
    kind = draw(
        st.sampled_from(
            [
                "truncate",
                "nest",
                "namespace",
                "sobject_id",
                "org_id",
                "notification_id",
                "splice",
                "entity",
                "encoding",
                "drop",
            ]
        )
    )
    if kind == "truncate":
        at = draw(st.integers(min_value=0, max_value=3000))
        return lambda xml: xml[:at]
    if kind == "nest":
        depth = draw(st.integers(min_value=10, max_value=20000))
        tag = draw(st.sampled_from(["a", "sf:Id", "soapenv:Body", "notifications"]))
        return lambda xml: xml.replace(
            "<sf:StageName>", f"<{tag}>" * depth + "x" + f"</{tag}>" * depth + "<sf:StageName>", 1
        )
    if kind == "namespace":
        old = draw(st.sampled_from([OUTBOUND_NS, SOAP_ENV_NS, "http://www.w3.org/2001/XMLSchema-instance"]))
        new = draw(
            st.one_of(st.sampled_from(["", "urn:x", OUTBOUND_NS + "/", SOAP_ENV_NS]), TEXT.map(_xml_escape))
        )
        return lambda xml: xml.replace(old, new.replace('"', "&quot;"))
    if kind in ("sobject_id", "org_id", "notification_id"):
        value = draw(
            st.one_of(
                NASTY, TEXT, st.text(alphabet="abcABC0189", min_size=14, max_size=19), st.just("x" * 100_000)
            )
        )
        old = {
            "sobject_id": "0068d0000099901AAA",
            "org_id": "00D000000000001EAA",
            "notification_id": "04l8d0000000002AAA",
        }[kind]
        return lambda xml: xml.replace(old, _xml_escape(value))
    if kind == "splice":
        at = draw(st.integers(min_value=0, max_value=3000))
        junk = draw(
            st.sampled_from(
                ["<", ">", "&", "]]>", "<!--", "\x00", "\udcff", "</soapenv:Body>", "<sf:Id>1</sf:Id>"]
            )
        )
        return lambda xml: xml[:at] + junk + xml[at:]
    if kind == "entity":
        return lambda xml: xml.replace(
            '<?xml version="1.0" encoding="UTF-8"?>',
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>',
        )
    if kind == "encoding":
        name = draw(st.sampled_from(["UTF-16", "latin-1", "ebcdic", "nope", "UTF-7"]))
        return lambda xml: xml.replace('encoding="UTF-8"', f'encoding="{name}"')
    element = draw(
        st.sampled_from(
            ["sf:Id", "OrganizationId", "ActionId", "Id", "sObject", "Notification", "notifications"]
        )
    )
    return lambda xml: xml.replace(f"<{element}", f"<{element}x").replace(f"</{element}>", f"</{element}x>")


@settings(FUZZ, max_examples=WEBHOOK_EXAMPLES)
@given(mutations=st.lists(soap_mutation(), min_size=1, max_size=3), latin=st.booleans())
async def test_mutated_outbound_messages_are_refused_or_start_only_real_opportunities(
    ingress: Ingress, mutations: list[Mutation], latin: bool
) -> None:
    xml = outbound(ingress.settings)
    for mutate in mutations:
        xml = mutate(xml)
    body = xml.encode("latin-1" if latin else "utf-8", errors="surrogateescape" if not latin else "replace")
    token = ingress.settings.salesforce_outbound_token.get_secret_value()
    response, calls = await send(
        ingress,
        "POST",
        f"{SALESFORCE}?token={token}",
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    )
    for call in calls:
        assert call.kind == "start" and response.status_code == 200, (response.status_code, calls)
        assert is_salesforce_id(call.workflow_id.rsplit(":", 1)[-1], checksum=False), call


# --- Xero webhooks --------------------------------------------------------------------------------------


def xero_event(settings: Settings) -> dict[str, Any]:
    invoice_id = str(uuid.uuid4())
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice_id}",
        "resourceId": invoice_id,
        "eventDateUtc": "2026-06-21T01:15:39.902",
        "eventType": "UPDATE",
        "eventCategory": "INVOICE",
        "tenantId": settings.xero_tenant_id,
        "tenantType": "ORGANISATION",
    }


@st.composite
def xero_body(draw: st.DrawFn, settings: Settings) -> bytes:
    document: dict[str, Any] = {
        "events": [xero_event(settings) for _ in range(draw(st.integers(min_value=0, max_value=3)))],
        "firstEventSequence": 1,
        "lastEventSequence": 3,
        "entropy": "S0M3R4ND0M3NTR0PY",
    }
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        target: Any = document
        listed = document.get("events")
        events: list[dict[str, Any]] = (
            [event for event in listed if isinstance(event, dict)] if isinstance(listed, list) else []
        )
        into_an_event: bool = draw(st.booleans())
        if events and into_an_event:
            target = draw(st.sampled_from(events))
        key = draw(st.sampled_from([*target.keys(), "extra"]))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUE)
    raw = dumps(document)
    shape = draw(st.sampled_from(["as is", "as is", "truncate", "deep", "huge int", "bytes", "scalar"]))
    if shape == "truncate":
        return raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    if shape == "deep":
        return raw.replace(b'"entropy"', b'"deep": ' + draw(DEEP) + b', "entropy"', 1)
    if shape == "huge int":
        return raw.replace(b'"firstEventSequence": 1', b'"firstEventSequence": ' + b"9" * 5000, 1)
    if shape == "bytes":
        at = draw(st.integers(min_value=0, max_value=len(raw)))
        return raw[:at] + draw(st.binary(min_size=1, max_size=8)) + raw[at:]
    if shape == "scalar":
        return draw(st.sampled_from([b"1", b"null", b'"events"', b"[]", b""]))
    return raw


@settings(FUZZ, max_examples=WEBHOOK_EXAMPLES)
@given(data=st.data(), signed=st.sampled_from([True, True, True, False]))
async def test_mutated_xero_webhooks_are_refused_or_only_nudge_invoice_runs(
    ingress: Ingress, data: st.DataObject, signed: bool
) -> None:
    body = data.draw(xero_body(ingress.settings), label="body")
    key = ingress.settings.xero_webhook_key.get_secret_value() if signed else "not-the-key"
    response, calls = await send(
        ingress,
        "POST",
        "/webhooks/xero",
        content=body,
        headers={"Content-Type": "application/json", "x-xero-signature": signature(body, key)},
    )
    if not signed:
        assert response.status_code == 401 and response.content == b"" and not calls
    if response.status_code != 200:
        assert not calls, (response.status_code, calls)
    assert all(call.kind == "signal" and call.detail == "invoice_changed" for call in calls), calls


# --- the codec server -----------------------------------------------------------------------------------

B64 = st.binary(max_size=80).map(lambda raw: base64.b64encode(raw).decode())


@st.composite
def codec_body(draw: st.DrawFn, sealed: dict[str, Any]) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "mutated", "raw"]))
    if kind == "raw":
        return draw(st.one_of(JSON_VALUE.map(dumps), DEEP, st.binary(max_size=100)))
    if kind == "random":
        payload = {
            "metadata": draw(
                st.dictionaries(
                    st.sampled_from(["encoding", "encryption-key-id", "x"]), st.one_of(B64, TEXT), max_size=3
                )
            ),
            "data": draw(st.one_of(B64, TEXT)),
        }
        return dumps({"payloads": [payload]})
    data = base64.b64decode(sealed["data"])
    metadata = dict(sealed["metadata"])
    change = draw(st.sampled_from(["truncate", "flip", "key id", "encoding"]))
    if change == "truncate":
        data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    elif change == "flip":
        at = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data = data[:at] + bytes([data[at] ^ draw(st.integers(min_value=1, max_value=255))]) + data[at + 1 :]
    elif change == "key id":
        metadata["encryption-key-id"] = base64.b64encode(draw(st.binary(max_size=12))).decode()
    else:
        metadata["encoding"] = base64.b64encode(
            draw(st.sampled_from([b"binary/encrypted", b"json/plain", b"\xff"]))
        ).decode()
    return dumps({"payloads": [{"metadata": metadata, "data": base64.b64encode(data).decode()}]})


@pytest_asyncio.fixture(scope="module")
async def sealed(ingress: Ingress) -> dict[str, Any]:
    [payload] = await EncryptionCodec.from_settings(ingress.settings).encode(
        [Payload(metadata={"encoding": b"json/plain"}, data=b'{"total": "10000.00"}')]
    )
    return {
        "metadata": {k: base64.b64encode(v).decode() for k, v in payload.metadata.items()},
        "data": base64.b64encode(payload.data).decode(),
    }


@settings(FUZZ, max_examples=CODEC_EXAMPLES)
@given(data=st.data(), operation=st.sampled_from(["decode", "encode"]))
async def test_codec_bodies_never_reach_a_5xx(
    ingress: Ingress, sealed: dict[str, Any], data: st.DataObject, operation: str
) -> None:
    body = data.draw(codec_body(sealed), label="body")
    response, _ = await send(
        ingress,
        "POST",
        f"/codec/{operation}",
        content=body,
        headers={"Content-Type": "application/json", **static_token(ingress.settings, "ops")},
    )
    assert response.status_code in (200, 400, 422), response.text
