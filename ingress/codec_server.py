"""The codec server the Temporal Web UI calls to show encrypted payloads to authorised people.

Protocol (Temporal's remote codec): POST /codec/decode and /codec/encode with {"payloads": [...]} in
protobuf JSON form. A bearer token with the ops or finance role is required; on a development stack the
local UI (which has no login) may call it from loopback without one.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidTag
from fastapi import APIRouter, Header, HTTPException, Request
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payloads

from ingress.identity import TokenRefused, verify_token
from ingress.limits import load_json
from runs.codec import ENCODING, KEY_ID, NONCE_BYTES, EncryptionCodec, UnknownKey

# AES-GCM appends a 16-byte authentication tag to what it seals.
TAG_BYTES = 16

router = APIRouter(prefix="/codec")
ROLES = ("ops", "finance")


def _authorise(request: Request, authorization: str | None) -> None:
    settings = request.app.state.settings
    if authorization and authorization.lower().startswith("bearer "):
        # A person's signed token, as the Temporal UI or CLI passes it on (static tokens only outside
        # production).
        try:
            identity = verify_token(settings, authorization[7:])
        except TokenRefused as refused:
            raise HTTPException(401, str(refused)) from None
        if identity.role in ROLES:
            return
        raise HTTPException(403, f"role {identity.role!r} may not read payloads")
    client = request.client.host if request.client else ""
    if settings.environment == "development" and client in ("127.0.0.1", "::1"):
        return
    raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})


async def _payloads(request: Request) -> Payloads:
    # The body's size and nesting were checked by the ingress's limits before it got here.
    try:
        document = load_json(await request.body())
    except ValueError as err:
        raise HTTPException(400, f"body is not JSON: {err}") from err
    if not isinstance(document, dict):
        raise HTTPException(400, f"body must be a JSON object {{'payloads': [...]}}, got {_kind(document)}")
    try:
        return ParseDict(document, Payloads())
    except (ParseError, ValueError, TypeError) as err:
        raise HTTPException(422, f"body must be {{'payloads': [...]}} in protobuf JSON: {err}") from err


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "null"


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec = request.app.state.codec
    return codec


def _check_sealed(payloads: Payloads) -> None:
    """Refuse, naming the payload, what cannot be one of ours before anything is decrypted."""
    for index, payload in enumerate(payloads.payloads):
        if payload.metadata.get("encoding") != ENCODING:
            continue
        try:
            payload.metadata.get(KEY_ID, b"").decode()
        except UnicodeDecodeError:
            raise HTTPException(400, f"payload {index}: its key id is not text") from None
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise HTTPException(
                400,
                f"payload {index}: {len(payload.data)} bytes of ciphertext is shorter than a nonce and tag "
                f"({NONCE_BYTES + TAG_BYTES} bytes)",
            )


@router.post("/decode")
async def decode(request: Request, authorization: str | None = Header(default=None)) -> dict[str, Any]:
    _authorise(request, authorization)
    payloads = await _payloads(request)
    _check_sealed(payloads)
    try:
        decoded = await _codec(request).decode(list(payloads.payloads))
    except UnknownKey as err:
        raise HTTPException(400, str(err)) from err
    except InvalidTag as err:
        raise HTTPException(
            400, "a payload could not be decrypted: altered, truncated, or sealed with another key"
        ) from err
    except DecodeError as err:
        raise HTTPException(
            400, f"a payload decrypted to something that is not a Temporal payload: {err}"
        ) from err
    return MessageToDict(Payloads(payloads=decoded))


@router.post("/encode")
async def encode(request: Request, authorization: str | None = Header(default=None)) -> dict[str, Any]:
    _authorise(request, authorization)
    payloads = await _payloads(request)
    return MessageToDict(Payloads(payloads=await _codec(request).encode(list(payloads.payloads))))
