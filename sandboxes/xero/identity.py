"""Xero's identity service as the sandbox plays it: client-credentials tokens and the tenant connections."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

from fastapi import FastAPI, Request, Response

from sandboxes.oauth import bearer
from sandboxes.xero import replies
from sandboxes.xero.sandbox import XeroSandbox

SCOPES = {
    "accounting.transactions",
    "accounting.transactions.read",
    "accounting.contacts",
    "accounting.contacts.read",
    "accounting.settings",
    "accounting.settings.read",
    "accounting.reports.read",
    "accounting.journals.read",
    "accounting.attachments",
    "accounting.attachments.read",
}


def refusal(sandbox: XeroSandbox, request: Request) -> Response | None:
    """Xero's 401 when the request carries no token the sandbox issued (or one that expired)."""
    if sandbox.tokens.check(bearer(request.headers.get("Authorization"))) is None:
        stamp = datetime.now(UTC).strftime("%m/%d/%Y %H:%M:%S")
        return replies.unauthorized(f"TokenExpired: token expired at {stamp}")
    return None


def add_identity_routes(app: FastAPI, sandbox: XeroSandbox) -> None:
    @app.post("/connect/token")
    async def token(request: Request) -> Response:
        # application/x-www-form-urlencoded, parsed by hand: no multipart library needed for three fields.
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        client_id, client_secret = None, None
        scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                client_id, _, client_secret = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return replies.token_error("invalid_client")
        if not sandbox.tokens.client_valid(client_id, client_secret):
            return replies.token_error("invalid_client")
        if form.get("grant_type") != "client_credentials":
            return replies.token_error("unsupported_grant_type")
        requested = str(form.get("scope") or "").split()
        if any(scope not in SCOPES for scope in requested):
            return replies.token_error("invalid_scope")
        assert client_id is not None
        granted = " ".join(requested) or " ".join(sorted(SCOPES))
        return replies.json_response(
            200,
            {
                "access_token": sandbox.tokens.issue(client_id),
                "expires_in": sandbox.config.token_lifetime_seconds,
                "token_type": "Bearer",
                "scope": granted,
            },
        )

    @app.get("/connections")
    async def connections(request: Request) -> Response:
        if (refused := refusal(sandbox, request)) is not None:
            return refused
        stamp = sandbox.connected_at.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return replies.json_response(
            200,
            [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"connection:{tenant}")),
                    "authEventId": str(uuid.uuid4()),
                    "tenantId": tenant,
                    "tenantType": "ORGANISATION",
                    "tenantName": sandbox.config.tenant_name,
                    "createdDateUtc": stamp,
                    "updatedDateUtc": stamp,
                }
                for tenant in sandbox.books
            ],
        )
