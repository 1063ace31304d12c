"""Salesforce OAuth 2.0 for server-to-server use: client credentials, or the JWT bearer flow.

Both fetch a token from /services/oauth2/token and, as Salesforce documents, a session that expired
or was revoked is answered 401 INVALID_SESSION_ID: that answer (and only that) makes the shared
OAuth2ClientCredentials flow fetch a new token and resend once.
"""

from __future__ import annotations

import time

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from connectors.http import OAuth2ClientCredentials

SYSTEM = "salesforce"
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# Salesforce refuses assertions that expire more than three minutes out.
JWT_LIFETIME_SECONDS = 180


def token_url(base_url: str) -> str:
    return f"{base_url.rstrip('/')}/services/oauth2/token"


def is_session_expired(response: httpx.Response) -> bool:
    return response.status_code == 401 and "INVALID_SESSION_ID" in response.text


def client_credentials_auth(*, base_url: str, client_id: str, client_secret: str) -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        token_url=token_url(base_url),
        client_id=client_id,
        client_secret=client_secret,
        system=SYSTEM,
        is_expired_response=is_session_expired,
    )


def load_private_key(pem: str | bytes) -> RSAPrivateKey:
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"jwt_private_key is not an unencrypted PEM private key: {exc}") from exc
    if not isinstance(key, RSAPrivateKey):
        raise ValueError("jwt_private_key must be an RSA key: Salesforce verifies JWT assertions with RS256")
    return key


class JwtBearerAuth(OAuth2ClientCredentials):
    """The OAuth 2.0 JWT bearer flow: each token request carries a fresh RS256 assertion.

    iss is the connected app's consumer key, sub the integration user's username, aud the login host.
    """

    def __init__(
        self,
        *,
        base_url: str,
        client_id: str,
        private_key: str | bytes,
        username: str,
        audience: str = "https://login.salesforce.com",
    ) -> None:
        super().__init__(
            token_url=token_url(base_url),
            client_id=client_id,
            client_secret="",
            system=SYSTEM,
            is_expired_response=is_session_expired,
        )
        self._private_key = load_private_key(private_key)
        self._username = username
        self._audience = audience

    def _token_request(self) -> httpx.Request:
        claims = {
            "iss": self._client_id,
            "sub": self._username,
            "aud": self._audience,
            "exp": int(time.time()) + JWT_LIFETIME_SECONDS,
        }
        assertion = jwt.encode(claims, self._private_key, algorithm="RS256")
        return httpx.Request(
            "POST",
            self._token_url,
            data={"grant_type": JWT_BEARER_GRANT, "assertion": assertion},
            headers={"Accept": "application/json"},
        )
