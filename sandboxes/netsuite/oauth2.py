"""OAuth 2.0 client credentials as NetSuite runs it: a client assertion (JWT) verified with the public key of
the certificate mapped to the integration, exchanged for a bearer token that lives 60 minutes.

The assertion must say typ JWT, alg PS256/PS384/PS512/ES256/ES384/ES512 (RS256 is refused), kid = a mapped
certificate id; iss = the integration's client id, scope including rest_webservices, aud = this token
endpoint's URL, iat not in the future, exp after now and less than 60 minutes after iat.
"""

from __future__ import annotations

import threading
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from cryptography.x509 import load_pem_x509_certificate

ALGORITHMS = ("PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION_SECONDS = 3600
CLOCK_SKEW_SECONDS = 60

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class AssertionRefused(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def public_key(pem: str) -> PublicKey:
    """A certificate (as uploaded to NetSuite) or a bare public key, PEM."""
    data = pem.strip().encode()
    key = (
        load_pem_x509_certificate(data).public_key()
        if b"CERTIFICATE" in data.split(b"\n", 1)[0]
        else load_pem_public_key(data)
    )
    if not isinstance(key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise ValueError("a NetSuite certificate holds an RSA or EC key")
    return key


class CertificateMappings:
    """The certificates mapped to the integration (OAuth 2.0 Client Credentials Setup), by certificate id."""

    def __init__(self, certificates: dict[str, str]) -> None:
        self._lock = threading.Lock()
        self._keys: dict[str, PublicKey] = {}
        for certificate_id, pem in certificates.items():
            self.map(certificate_id, pem)

    def map(self, certificate_id: str, pem: str) -> None:
        key = public_key(pem)
        with self._lock:
            self._keys[certificate_id] = key

    def revoke(self, certificate_id: str) -> None:
        with self._lock:
            self._keys.pop(certificate_id, None)

    def get(self, certificate_id: str) -> PublicKey | None:
        return self._keys.get(certificate_id)

    def ids(self) -> list[str]:
        return sorted(self._keys)


def verify_assertion(
    assertion: str, *, client_id: str, token_url: str, mappings: CertificateMappings, now: float
) -> dict[str, Any]:
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError as err:
        raise AssertionRefused("invalid_request", f"client_assertion is not a JWT: {err}") from None
    if header.get("typ", "JWT") != "JWT":
        raise AssertionRefused("invalid_request", "typ must be JWT")
    algorithm = header.get("alg")
    if algorithm not in ALGORITHMS:
        raise AssertionRefused("invalid_request", f"alg {algorithm!r} is not one of {', '.join(ALGORITHMS)}")
    key = mappings.get(str(header.get("kid")))
    if key is None:
        raise AssertionRefused(
            "invalid_client", f"no certificate {header.get('kid')!r} is mapped to the client"
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[algorithm],
            audience=token_url,
            options={"require": ["iss", "aud", "iat", "exp"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.InvalidAudienceError:
        raise AssertionRefused("invalid_grant", f"aud must be the token endpoint {token_url}") from None
    except jwt.PyJWTError as err:
        raise AssertionRefused("invalid_client", f"client_assertion refused: {err}") from None
    if claims["iss"] != client_id:
        raise AssertionRefused("invalid_client", "iss is not the integration's client id")
    scope = claims.get("scope")
    scopes = scope if isinstance(scope, list) else str(scope or "").replace(",", " ").split()
    if "rest_webservices" not in scopes:
        raise AssertionRefused("invalid_scope", "scope must include rest_webservices")
    issued, expires = int(claims["iat"]), int(claims["exp"])
    if issued > now + CLOCK_SKEW_SECONDS:
        raise AssertionRefused("invalid_grant", "iat is in the future")
    if expires <= now:
        raise AssertionRefused("invalid_grant", "the assertion has expired")
    # "Less than 60 minutes" in the text, exactly 3600 s in NetSuite's own example: 60 minutes is accepted.
    if expires - issued > MAX_ASSERTION_SECONDS:
        raise AssertionRefused("invalid_grant", "exp must be at most 60 minutes after iat")
    return claims
