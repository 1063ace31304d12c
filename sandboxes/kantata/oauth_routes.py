"""`POST /oauth/token`: Kantata's Doorkeeper token endpoint.

Kantata's OpenID discovery document lists the `authorization_code`, `client_credentials` and
`refresh_token` grants, with `client_secret_basic` and `client_secret_post` client authentication. The
sandbox serves the two grants a service account uses; errors come back in Doorkeeper's RFC 6749 shape.
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandboxes.oauth import TokenIssuer

router = APIRouter()


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _client(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("basic "):
        import base64

        try:
            decoded = base64.b64decode(authorization[6:]).decode()
        except ValueError:
            return None, None
        client_id, _, secret = decoded.partition(":")
        return client_id, secret
    return form.get("client_id"), form.get("client_secret")


def _token_response(
    issuer: TokenIssuer, refresh_tokens: dict[str, str], client_id: str, now: int
) -> JSONResponse:
    refresh = secrets.token_urlsafe(24)
    refresh_tokens[refresh] = client_id
    return JSONResponse(
        {
            "access_token": issuer.issue(client_id),
            "token_type": "Bearer",
            "expires_in": issuer.lifetime_seconds,
            "refresh_token": refresh,
            "scope": "api_only",
            "created_at": now,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


@router.post("/oauth/token")
async def token(request: Request) -> JSONResponse:
    raw = (await request.body()).decode()
    form = {key: values[0] for key, values in parse_qs(raw).items()}
    issuer: TokenIssuer = request.app.state.tokens
    refresh_tokens: dict[str, str] = request.app.state.refresh_tokens
    client_id, secret = _client(request, form)
    if not issuer.client_valid(client_id, secret):
        return _oauth_error(
            401,
            "invalid_client",
            "Client authentication failed due to unknown client, no "
            "client authentication included, or unsupported authentication "
            "method.",
        )
    assert client_id is not None
    now = int(request.app.state.kantata.clock.now().timestamp())
    grant = form.get("grant_type")
    if grant == "client_credentials":
        return _token_response(issuer, refresh_tokens, client_id, now)
    if grant == "refresh_token":
        owner = refresh_tokens.pop(form.get("refresh_token") or "", None)
        if owner != client_id:
            return _oauth_error(
                400,
                "invalid_grant",
                "The provided authorization grant is invalid, expired, "
                "revoked, does not match the redirection URI used in the "
                "authorization request, or was issued to another client.",
            )
        return _token_response(issuer, refresh_tokens, client_id, now)
    return _oauth_error(
        400,
        "unsupported_grant_type",
        "The authorization grant type is not supported by the authorization server.",
    )
