"""Who may look: the people-facing read-only pages and status endpoints (the ops page, a run's status).

A browser cannot send a bearer token, so besides `Authorization: Bearer <token>` these accept HTTP Basic with
the token as the password (any user name): the browser asks for it once.
"""

from __future__ import annotations

import base64
import binascii

from fastapi import Header, HTTPException, Request

from ingress.exceptions_api import READERS
from ingress.identity import TokenRefused, verify_token


def page_reader(request: Request, authorization: str | None = Header(default=None)) -> str:
    """Bearer token, or HTTP Basic with the token as password; the role must be able to read the queue."""
    challenge = {"WWW-Authenticate": 'Basic realm="ps-sync ops"'}
    if not authorization:
        raise HTTPException(
            401, "credentials needed: a bearer token, or the token as a Basic password", challenge
        )
    scheme, _, value = authorization.partition(" ")
    token = value.strip()
    if scheme.lower() == "basic":
        try:
            token = base64.b64decode(token, validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            raise HTTPException(401, "malformed Basic credentials", challenge) from None
    elif scheme.lower() != "bearer":
        raise HTTPException(401, f"unsupported authorization scheme {scheme!r}", challenge)
    # The same verification as every people-facing endpoint: a person's signed token (static tokens only
    # outside production).
    try:
        identity = verify_token(request.app.state.settings, token)
    except TokenRefused as refused:
        raise HTTPException(401, str(refused), challenge) from None
    if identity.role not in READERS:
        raise HTTPException(403, f"role {identity.role!r} may not read the ops page")
    return identity.role
