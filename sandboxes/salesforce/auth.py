"""The OAuth 2.0 token endpoint (/services/oauth2/token): client-credentials and JWT bearer grants."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from sandboxes.oauth import Issued, TokenIssuer, bearer
from sandboxes.salesforce.config import SalesforceSandboxConfig
from sandboxes.salesforce.org import Org

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


def _oauth_error(error: str, description: str) -> tuple[int, dict[str, str]]:
    return 400, {"error": error, "error_description": description}


def load_public_key(pem: str) -> RSAPublicKey:
    """The RSA key that verifies JWT assertions, from an X.509 certificate or a bare public key."""
    data = pem.encode()
    key: object = (
        x509.load_pem_x509_certificate(data).public_key()
        if b"BEGIN CERTIFICATE" in data
        else serialization.load_pem_public_key(data)
    )
    if not isinstance(key, RSAPublicKey):
        raise ValueError("the JWT bearer certificate must hold an RSA key (Salesforce signs with RS256)")
    return key


class TokenEndpoint:
    def __init__(self, config: SalesforceSandboxConfig, org: Org) -> None:
        self._config = config
        self._org = org
        self._org15 = config.org_id[:15]
        self.issuer = TokenIssuer({config.client_id: config.client_secret}, config.token_lifetime_seconds)
        pem = config.jwt_certificate_pem
        if pem is None and config.jwt_certificate_path:
            pem = Path(config.jwt_certificate_path).read_text()
        self._jwt_key = load_public_key(pem) if pem else None

    def check(self, authorization: str | None) -> Issued | None:
        """The session behind an Authorization header, if it is current."""
        token = bearer(authorization)
        if token is None:
            return None
        org_part, _, secret = token.partition("!")
        if org_part != self._org15:
            return None
        return self.issuer.check(secret)

    def token(
        self, form: dict[str, str], authorization: str | None, instance_url: str
    ) -> tuple[int, dict[str, Any]]:
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(form, authorization, instance_url)
        if grant == JWT_BEARER_GRANT:
            return self._jwt_bearer(form, instance_url)
        if not grant:
            return _oauth_error("invalid_request", "grant_type is required")
        return _oauth_error("unsupported_grant_type", "grant type not supported")

    def _client_credentials(
        self, form: dict[str, str], authorization: str | None, instance_url: str
    ) -> tuple[int, dict[str, Any]]:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except ValueError:
                return _oauth_error("invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        if not client_id or client_id != self._config.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        if not self.issuer.client_valid(client_id, client_secret):
            return _oauth_error("invalid_client", "invalid client credentials")
        return 200, self._issue(client_id, instance_url, signed=True)

    def _jwt_bearer(self, form: dict[str, str], instance_url: str) -> tuple[int, dict[str, Any]]:
        assertion = form.get("assertion")
        if not assertion:
            return _oauth_error("invalid_request", "assertion is required for the JWT bearer grant")
        if self._jwt_key is None:
            return _oauth_error(
                "invalid_grant", "invalid assertion: no certificate is configured for JWT bearer"
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "invalid assertion")
        if header.get("alg") != "RS256":
            return _oauth_error("invalid_grant", "invalid assertion: the signing algorithm must be RS256")
        try:
            claims = jwt.decode(
                assertion,
                self._jwt_key,
                algorithms=["RS256"],
                audience=self._config.jwt_audience,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.InvalidAudienceError:
            return _oauth_error("invalid_grant", "audience is invalid")
        except jwt.ExpiredSignatureError:
            return _oauth_error("invalid_grant", "expired assertion: exp is in the past")
        except jwt.MissingRequiredClaimError as exc:
            return _oauth_error("invalid_grant", f"invalid assertion: missing claim {exc.claim}")
        except jwt.PyJWTError:
            return _oauth_error("invalid_grant", "invalid assertion")
        if claims["iss"] != self._config.client_id:
            return _oauth_error("invalid_client_id", "client identifier invalid")
        known_user = any(
            doc.get("Username") == claims["sub"] and doc.get("IsActive") for doc in self._org.records("User")
        )
        if not known_user or claims["sub"] not in self._config.jwt_usernames:
            return _oauth_error("invalid_grant", "user hasn't approved this consumer")
        return 200, self._issue(claims["iss"], instance_url, signed=False)

    def _issue(self, client_id: str, instance_url: str, *, signed: bool) -> dict[str, Any]:
        secret = self.issuer.issue(client_id)
        access_token = f"{self._org15}!{secret}"
        issued_at = str(int(time.time() * 1000))
        identity = f"{instance_url}/id/{self._config.org_id}/{self._org.running_user_id}"
        body: dict[str, Any] = {
            "access_token": access_token,
            "scope": "api",
            "instance_url": instance_url,
            "id": identity,
            "token_type": "Bearer",
            "issued_at": issued_at,
        }
        if signed:
            # Salesforce signs id + issued_at with the client secret so clients can check the response.
            digest = hmac.new(
                self._config.client_secret.encode(), f"{identity}{issued_at}".encode(), hashlib.sha256
            ).digest()
            body["signature"] = base64.b64encode(digest).decode()
        return body
