"""The codec server the Temporal Web UI calls to show encrypted payloads to authorised people.

Protocol (Temporal's remote codec): POST /codec/decode and /codec/encode with {"payloads": [...]} in
protobuf JSON form. A bearer token with the ops or finance role is required; on a development stack the
local UI (which has no login) may call it from loopback without one.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Header, HTTPException, Request
from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payloads

from pssync.codec import EncryptionCodec, UnknownKey

router = APIRouter(prefix="/codec")
ROLES = ("ops", "finance")


def _authorise(request: Request, authorization: str | None) -> None:
    settings = request.app.state.settings
    if authorization and authorization.lower().startswith("bearer "):
        presented = authorization[7:].strip()
        for token, role in settings.token_roles().items():
            if secrets.compare_digest(token, presented):
                if role in ROLES:
                    return
                raise HTTPException(403, f"role {role!r} may not read payloads")
        raise HTTPException(401, "unknown bearer token")
    client = request.client.host if request.client else ""
    if settings.environment == "development" and client in ("127.0.0.1", "::1"):
        return
    raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})


async def _payloads(request: Request) -> Payloads:
    try:
        return ParseDict(await request.json(), Payloads())
    except (ParseError, ValueError) as err:
        raise HTTPException(422, f"body must be {{'payloads': [...]}} in protobuf JSON: {err}") from err


def _codec(request: Request) -> EncryptionCodec:
    codec: EncryptionCodec = request.app.state.codec
    return codec


@router.post("/decode")
async def decode(request: Request, authorization: str | None = Header(default=None)) -> dict[str, Any]:
    _authorise(request, authorization)
    payloads = await _payloads(request)
    try:
        decoded = await _codec(request).decode(list(payloads.payloads))
    except UnknownKey as err:
        raise HTTPException(422, str(err)) from err
    return MessageToDict(Payloads(payloads=decoded))


@router.post("/encode")
async def encode(request: Request, authorization: str | None = Header(default=None)) -> dict[str, Any]:
    _authorise(request, authorization)
    payloads = await _payloads(request)
    return MessageToDict(Payloads(payloads=await _codec(request).encode(list(payloads.payloads))))
