"""Request plumbing: the account state behind a request, and the Bearer check on `/api/v1`."""

from __future__ import annotations

from fastapi import Request

from sandboxes.kantata.errors import unauthorized
from sandboxes.kantata.state import KantataState
from sandboxes.oauth import TokenIssuer, bearer


def kantata(request: Request) -> KantataState:
    state: KantataState = request.app.state.kantata
    return state


async def require_token(request: Request) -> None:
    issuer: TokenIssuer = request.app.state.tokens
    if issuer.check(bearer(request.headers.get("authorization"))) is None:
        raise unauthorized()
