"""What the ingress accepts before any endpoint runs: how large a body may be, in which media type, how deeply
nested its JSON may be, and how large an integer in a path.

The limits are per endpoint family, enforced by `BodyLimits` before the body is read in full: a declared
Content-Length over the limit is refused at once, and a body without one is counted as it streams in and
refused as soon as it passes the limit, so an oversized request costs at most the limit in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message as MimeHeader
from itertools import accumulate
from typing import Annotated, Any

from fastapi import Path
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.salesforce.outbound import soap_fault

KIB = 1024
MIB = 1024 * KIB

# A message carries at most 100 notifications, each an sObject with the fields the outbound message action
# selects: well under 10 KB each in practice, so 1 MB leaves room without inviting abuse.
SALESFORCE_OUTBOUND_MAX_BYTES = 1 * MIB
# Xero batches events per tenant, a few hundred bytes each; 256 KB is far beyond any real delivery.
XERO_WEBHOOK_MAX_BYTES = 256 * KIB
# People's requests: a decision, a note, corrected fields for one record.
JSON_API_MAX_BYTES = 64 * KIB
# The Temporal UI posts an event's payloads as protobuf JSON (base64 data): Temporal's default blob limit is
# 2 MB per payload, 2.7 MB once base64-encoded, so 4 MB still decodes the largest payload history can hold.
CODEC_MAX_BYTES = 4 * MIB

# Deeper than any document we take (the codec's is 4 levels); deep enough nesting otherwise reaches the
# interpreter's recursion limit in the JSON parser or in validation.
MAX_JSON_DEPTH = 32

# Ledger ids are signed 64-bit integers; a larger one in a path cannot name anything and would overflow the
# database driver.
MAX_INT64 = 2**63 - 1
LedgerId = Annotated[int, Path(ge=1, le=MAX_INT64, description="a ledger id (a positive 64-bit integer)")]

JSON = ("application/json",)
SOAP_1_1 = ("text/xml",)
FORM = ("application/x-www-form-urlencoded",)

Reply = Callable[[int, str], Response]


def json_reply(status: int, message: str) -> Response:
    return JSONResponse({"detail": message}, status_code=status)


def soap_reply(status: int, message: str) -> Response:
    return Response(soap_fault(message), status_code=status, media_type="text/xml; charset=utf-8")


def text_reply(status: int, message: str) -> Response:
    return PlainTextResponse(message, status_code=status)


@dataclass(frozen=True)
class BodyPolicy:
    max_bytes: int
    media_types: tuple[str, ...]
    # Checked here, before the endpoint: only where nothing must happen before it (the Xero webhook checks
    # its signature first, and the depth after).
    check_json_depth: bool
    reply: Reply


SALESFORCE_OUTBOUND = BodyPolicy(SALESFORCE_OUTBOUND_MAX_BYTES, SOAP_1_1, False, soap_reply)
XERO_WEBHOOK = BodyPolicy(XERO_WEBHOOK_MAX_BYTES, JSON, False, text_reply)
CODEC = BodyPolicy(CODEC_MAX_BYTES, JSON, True, json_reply)
JSON_API = BodyPolicy(JSON_API_MAX_BYTES, JSON, True, json_reply)
# The browser workspace's forms: small, url-encoded, answered as text like any page.
WORKSPACE_FORM = BodyPolicy(JSON_API_MAX_BYTES, FORM, False, text_reply)

# Longest prefix first; every other path is a JSON API.
POLICIES: tuple[tuple[str, BodyPolicy], ...] = (
    ("/webhooks/salesforce/", SALESFORCE_OUTBOUND),
    ("/webhooks/xero", XERO_WEBHOOK),
    ("/codec/", CODEC),
    ("/workspace/", WORKSPACE_FORM),
)


def policy_for(path: str) -> BodyPolicy:
    for prefix, policy in POLICIES:
        if path.startswith(prefix):
            return policy
    return JSON_API


# A JSON string, escapes included; brackets inside one do not nest anything.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth(body: bytes) -> int:
    """How deeply the body's arrays and objects nest, without parsing it (so without recursion).

    Malformed JSON gets a number too; the parser refuses it afterwards.
    """
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_A_BRACKET)
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> str | None:
    """Why the body is refused for its nesting, or None."""
    depth = json_depth(body)
    return f"JSON nested {depth} levels deep; at most {limit} are accepted" if depth > limit else None


def load_json(body: bytes) -> Any:
    """Parse a body whose depth was checked; ValueError (with the reason) for anything that is not JSON."""
    try:
        return json.loads(body)
    except (UnicodeDecodeError, RecursionError) as err:
        raise ValueError(str(err) or type(err).__name__) from err


def _media_type(content_type: str) -> str:
    header = MimeHeader()
    header["content-type"] = content_type
    return header.get_content_type()


class BodyTooLarge(Exception):
    """Raised from `receive` once the body passes its limit; `BodyLimits` answers 413 for it."""


class BodyLimits:
    """Size, media type and (for JSON APIs) nesting of request bodies, per `policy_for(path)`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = policy_for(scope["path"])
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isascii() or not declared.isdigit():
                await policy.reply(400, "Content-Length is not a number")(scope, receive, send)
                return
            if int(declared) > policy.max_bytes:
                await self._too_large(policy, scope, receive, send)
                return
        has_body = (declared is not None and int(declared) > 0) or "transfer-encoding" in headers
        if has_body and _media_type(headers.get("content-type", "")) not in policy.media_types:
            message = f"the body must be {' or '.join(policy.media_types)}"
            await policy.reply(415, message)(scope, receive, send)
            return

        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > policy.max_bytes:
                    raise BodyTooLarge
            return message

        if policy.check_json_depth and has_body:
            try:
                body = await _read_all(counted)
            except BodyTooLarge:
                await self._too_large(policy, scope, receive, send)
                return
            if body is None:
                return
            refused = too_deep(body)
            if refused:
                await policy.reply(400, refused)(scope, receive, send)
                return
            await self.app(scope, _replay(body, receive), send)
            return

        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(policy, scope, receive, send)

    @staticmethod
    async def _too_large(policy: BodyPolicy, scope: Scope, receive: Receive, send: Send) -> None:
        message = f"the body is larger than this endpoint's limit of {policy.max_bytes} bytes"
        response = policy.reply(413, message)
        # Unread body left on the connection: the server must not try to reuse it.
        response.headers["connection"] = "close"
        await response(scope, receive, send)


async def _read_all(receive: Receive) -> bytes | None:
    """The whole body, or None if the client went away first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
