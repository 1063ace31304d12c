"""Vendor OpenAPI descriptions, loaded once, and an httpx transport that validates traffic against them.

`SpecValidatingTransport` sits between a connector's httpx client and the network: it validates every
request the connector sends and every response the sandbox returns with openapi-core, with the sandbox's
host mapped to the spec's server (https://api.xero.com/api.xro/2.0), and raises `SpecViolation` on the
first mismatch, failing the test that caused it.

Where the published spec is stricter than Xero's documented behaviour, the exception is narrowed to that
behaviour alone (see `ResponseTolerance` and `xero_webhook_payload`); nothing else is skipped:

1. Status codes the spec does not declare for an operation. Most writes declare only 200 and 400 and
   most reads only 200, yet Xero documents 400 ApiException (e.g. a bad `where` on a read), 401 (token),
   403 (tenant), 404 (text body), 429 (limits), 503 (text body) on developer.xero.com/documentation/api/
   http-response-codes and /guides/oauth2/limits. Responses with exactly these statuses (plus the
   Idempotency-Key conflicts 409/422) are checked for Xero's documented shape by hand instead; any other
   undeclared status is a violation.
2. Webhook `eventDateUtc` is declared `format: date-time` but Xero sends UTC without an offset
   ("2024-06-21T01:15:39.902", the spec's own example). Exactly that pattern gets a "Z" before validation.
3. The intent-to-receive payload has `firstEventSequence`/`lastEventSequence` 0 (developer.xero.com/
   documentation/guides/webhooks/configuring-your-server) where the schema says minimum 1. Exactly the
   handshake shape (no events, both sequences 0) is validated with the sequences read as 1.
4. The identity endpoints (`/connect/token`, `/connections`) are not in xero_accounting.yaml; their
   requests and responses are checked by hand against developer.xero.com's OAuth 2.0 docs.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

SPECS = Path(__file__).resolve().parents[2] / "specs"
XERO_SERVER = "https://api.xero.com"
XERO_API_PREFIX = "/api.xro/2.0"

# Statuses Xero documents outside the spec, with the body shape each must have.
_DOCUMENTED_STATUSES = {
    400: "api-exception",
    401: "problem",
    403: "problem",
    404: "text",
    409: "problem",
    422: "problem",
    429: "rate-limit",
    500: "text",
    503: "text",
    504: "text",
}
_OFFSETLESS_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?$")


class SpecViolation(AssertionError):
    """Traffic that does not match the vendor's published API description."""


def _load(path: Path) -> OpenAPI:
    try:
        loader: Any = yaml.CSafeLoader
    except AttributeError:  # PyYAML without libyaml
        loader = yaml.SafeLoader
    with path.open("rb") as handle:
        document = yaml.load(handle, Loader=loader)
    # The published description is trusted as a document; validating 900 KB of it per session is waste.
    return OpenAPI.from_dict(document, config=Config(spec_validator_cls=None))


@functools.cache
def xero_accounting() -> OpenAPI:
    return _load(SPECS / "xero" / "xero_accounting.yaml")


@functools.cache
def xero_webhooks() -> OpenAPI:
    return _load(SPECS / "xero" / "xero-webhooks.yaml")


class OpenAPIRequest:
    """An httpx.Request in openapi-core's Request protocol, addressed to the spec's server."""

    def __init__(self, request: httpx.Request, host_url: str) -> None:
        self.method = request.method.lower()
        self.host_url = host_url
        self.path = request.url.path
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())),
            cookie=ImmutableMultiDict(),
        )
        self.body: bytes | None = request.content or None
        self.content_type = request.headers.get("content-type", "").lower()


class OpenAPIWebhookRequest:
    def __init__(self, name: str, body: bytes, headers: dict[str, str]) -> None:
        self.name = name
        self.method = "post"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(), header=Headers(list(headers.items())), cookie=ImmutableMultiDict()
        )
        self.body: bytes | None = body
        self.content_type = headers.get("content-type", "application/json").lower()


class OpenAPIResponse:
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(list(response.headers.items()))
        self.data: bytes | None = response.content
        self.content_type = response.headers.get("content-type", "").lower()


@dataclass
class ValidationLog:
    """What was validated, so a test can prove validation actually ran."""

    requests: Counter[str] = field(default_factory=Counter)
    responses: Counter[str] = field(default_factory=Counter)
    documented_statuses: Counter[int] = field(default_factory=Counter)
    identity: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.requests.values()) + sum(self.responses.values())


def _operation(request: httpx.Request) -> str:
    return f"{request.method} {request.url.path}"


def _check_documented_status(response: httpx.Response, what: str) -> None:
    kind = _DOCUMENTED_STATUSES[response.status_code]
    content_type = response.headers.get("content-type", "")
    if kind == "problem":
        body = json.loads(response.content)
        missing = {"Title", "Status", "Detail"} - set(body)
        if missing or body["Status"] != response.status_code:
            raise SpecViolation(f"{what}: {response.status_code} body is not Xero's problem shape: {body}")
        if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
            raise SpecViolation(f"{what}: 401 without WWW-Authenticate")
    elif kind == "api-exception":
        body = json.loads(response.content)
        if not (
            isinstance(body.get("ErrorNumber"), int)
            and isinstance(body.get("Type"), str)
            and isinstance(body.get("Message"), str)
        ):
            raise SpecViolation(f"{what}: 400 body is not Xero's ApiException shape: {body}")
    elif kind == "text":
        if not content_type.startswith("text/plain") or not response.content:
            raise SpecViolation(f"{what}: {response.status_code} should carry Xero's plain-text message")
    elif kind == "rate-limit":
        for header in ("Retry-After", "X-Rate-Limit-Problem"):
            if header not in response.headers:
                raise SpecViolation(f"{what}: 429 without {header}")
        if response.headers["X-Rate-Limit-Problem"] not in ("minute", "day", "concurrent", "appminute"):
            raise SpecViolation(
                f"{what}: unknown X-Rate-Limit-Problem {response.headers['X-Rate-Limit-Problem']}"
            )


def _check_identity(request: httpx.Request, response: httpx.Response, log: ValidationLog) -> None:
    path = request.url.path
    if path.endswith("/connect/token"):
        form = parse_qs(request.content.decode())
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if request.method != "POST" or form.get("grant_type") != ["client_credentials"]:
            raise SpecViolation(f"token request must POST grant_type=client_credentials, got {form}")
        if scheme != "Basic" or ":" not in base64.b64decode(encoded).decode():
            raise SpecViolation("Xero's token endpoint takes the client credentials as HTTP Basic auth")
        if response.status_code == 200 and not {"access_token", "expires_in", "token_type"} <= set(
            response.json()
        ):
            raise SpecViolation(f"token response lacks access_token/expires_in/token_type: {response.text}")
    elif path.endswith("/connections") and response.status_code == 200:
        for connection in response.json():
            if not {"id", "tenantId", "tenantType", "tenantName"} <= set(connection):
                raise SpecViolation(f"connection lacks Xero's fields: {connection}")
    log.identity[f"{request.method} {path}"] += 1


def validate_request(openapi: OpenAPI, request: httpx.Request, *, host_url: str, log: ValidationLog) -> None:
    what = _operation(request)
    with warnings.catch_warnings():
        # openapi-core cannot evaluate OAuth2 security schemes and says so on every call.
        warnings.filterwarnings("ignore", message="Unsupported scheme type")
        try:
            openapi.validate_request(OpenAPIRequest(request, host_url))
        except Exception as exc:
            raise SpecViolation(f"request {what} violates the spec: {exc} {exc.__cause__ or ''}") from exc
    log.requests[what] += 1


def validate_response(
    openapi: OpenAPI, request: httpx.Request, response: httpx.Response, *, host_url: str, log: ValidationLog
) -> None:
    what = _operation(request)
    try:
        openapi.validate_response(OpenAPIRequest(request, host_url), OpenAPIResponse(response))
    except ResponseNotFound as exc:
        if response.status_code not in _DOCUMENTED_STATUSES:
            raise SpecViolation(
                f"response {response.status_code} to {what} is neither in the spec nor a "
                f"status Xero documents: {response.text[:300]}"
            ) from exc
        _check_documented_status(response, what)
        log.documented_statuses[response.status_code] += 1
        return
    except Exception as exc:
        raise SpecViolation(
            f"response {response.status_code} to {what} violates the spec: {exc} "
            f"{exc.__cause__ or ''} body={response.text[:500]}"
        ) from exc
    log.responses[what] += 1


class SpecValidatingTransport(httpx.AsyncBaseTransport):
    """Validate each accounting request before it leaves and each response before the connector sees it."""

    def __init__(
        self,
        openapi: OpenAPI | None = None,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        log: ValidationLog | None = None,
        host_url: str = XERO_SERVER,
        api_prefix: str = XERO_API_PREFIX,
    ) -> None:
        self.openapi = openapi or xero_accounting()
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.log = log or ValidationLog()
        self.host_url = host_url
        self.api_prefix = api_prefix

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        is_api = request.url.path.startswith(self.api_prefix)
        if is_api:
            validate_request(self.openapi, request, host_url=self.host_url, log=self.log)
        raw = await self.inner.handle_async_request(request)
        body = await raw.aread()
        await raw.aclose()
        # A fresh response carries the bytes on to the client; the inner one's stream is spent.
        response = httpx.Response(
            raw.status_code, headers=raw.headers, content=body, request=request, extensions=raw.extensions
        )
        if is_api:
            validate_response(self.openapi, request, response, host_url=self.host_url, log=self.log)
        else:
            _check_identity(request, response, self.log)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def xero_webhook_payload(body: bytes) -> dict[str, Any]:
    """The payload as the webhook schema can judge it, with only the two documented deviations adjusted."""
    payload: dict[str, Any] = json.loads(body)
    events = payload.get("events")
    if events == [] and payload.get("firstEventSequence") == 0 and payload.get("lastEventSequence") == 0:
        payload = {**payload, "firstEventSequence": 1, "lastEventSequence": 1}
    if isinstance(events, list):
        payload["events"] = [
            {**event, "eventDateUtc": event["eventDateUtc"] + "Z"}
            if isinstance(event, dict)
            and isinstance(event.get("eventDateUtc"), str)
            and _OFFSETLESS_UTC.match(event["eventDateUtc"])
            else event
            for event in events
        ]
    return payload


_WEBHOOK_NAMES = {
    "INVOICE": "invoices",
    "CONTACT": "contacts",
    "CREDITNOTE": "creditNotes",
    "SUBSCRIPTION": "subscriptions",
}


def validate_xero_webhook(body: bytes, headers: dict[str, str]) -> None:
    """Validate a delivered webhook body against xero-webhooks.yaml (the webhook its events belong to)."""
    payload = xero_webhook_payload(body)
    categories = {
        event.get("eventCategory") for event in payload.get("events", []) if isinstance(event, dict)
    }
    names = [_WEBHOOK_NAMES.get(str(c), "invoices") for c in categories] or ["invoices"]
    adjusted = json.dumps(payload).encode()
    for name in names:
        try:
            xero_webhooks().validate_request(OpenAPIWebhookRequest(name, adjusted, headers))
        except Exception as exc:
            raise SpecViolation(
                f"webhook payload violates xero-webhooks.yaml ({name}): {exc} {exc.__cause__ or ''}"
            ) from exc
