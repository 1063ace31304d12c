"""Who is calling: a person named by a signed token, verified the same way by the ingress and the CLI.

A decision is recorded against the person who made it, so the actor always comes from the verified token
and never from what a request says about itself. Tokens are JWTs carrying `sub`, `name`, `role` and `exp`:
HS256 with the shared development secret, or RS256/ES256 from an identity provider checked against its
public key (and issuer and audience when configured). The static role tokens of `api_tokens` still work
outside production, each as a named development identity, so the local stack needs no identity provider.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from config import Settings

# viewer: reads the business health and nothing else.
ROLES = ("finance", "ops", "pmo", "sales_ops", "viewer")
REQUIRED_CLAIMS = ("sub", "name", "role", "exp")
PRODUCTION = "production"


@dataclass(frozen=True)
class Identity:
    subject: str
    name: str
    role: str
    # False for a static development token: it names a role, not a person.
    personal: bool = True

    @property
    def actor(self) -> str:
        """How the person is recorded in run histories and the ledger: readable, and unique by subject."""
        return f"{self.name} <{self.subject}>"


class TokenRefused(Exception):
    """The presented token proves no identity; the message says why without echoing the token."""


def static_identity(role: str) -> Identity:
    return Identity(subject=f"dev-token:{role}", name=f"dev {role} token", role=role, personal=False)


def verify_token(settings: Settings, token: str) -> Identity:
    token = token.strip()
    if not token:
        raise TokenRefused("empty token")
    if token.count(".") == 2:
        return _verify_jwt(settings, token)
    if settings.environment == PRODUCTION:
        raise TokenRefused("shared tokens are not accepted in production: present your own signed token")
    # Compare against every configured token so the time taken does not reveal which one nearly matched.
    found: str | None = None
    for known, role in settings.token_roles().items():
        if secrets.compare_digest(known.encode(), token.encode()):
            found = role
    if found is None:
        raise TokenRefused("unknown bearer token")
    return static_identity(found)


def _verify_jwt(settings: Settings, token: str) -> Identity:
    try:
        algorithm = jwt.get_unverified_header(token).get("alg")
    except jwt.PyJWTError as error:
        raise TokenRefused(f"malformed token: {error}") from None
    if not isinstance(algorithm, str):
        raise TokenRefused("token names no signing algorithm")
    key = _key_for(settings, algorithm)
    if settings.environment == PRODUCTION and algorithm != "HS256":
        # An identity provider signs tokens for many applications: only its issuer and audience say the
        # token was meant for this one.
        if not (settings.jwt_issuer and settings.jwt_audience):
            raise TokenRefused("this ingress has no PSSYNC_JWT_ISSUER and PSSYNC_JWT_AUDIENCE to check")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            leeway=settings.jwt_leeway_seconds,
            options={
                "require": [*REQUIRED_CLAIMS, *(["iss"] if settings.jwt_issuer else [])],
                "verify_aud": settings.jwt_audience is not None,
            },
        )
    except jwt.ExpiredSignatureError:
        raise TokenRefused("token expired") from None
    except jwt.InvalidSignatureError:
        raise TokenRefused("token signature does not verify") from None
    except jwt.MissingRequiredClaimError as error:
        raise TokenRefused(f"token lacks the {error.claim!r} claim") from None
    except jwt.InvalidIssuerError:
        raise TokenRefused("token issued by someone this ingress does not trust") from None
    except jwt.InvalidAudienceError:
        raise TokenRefused("token is meant for another audience") from None
    except jwt.PyJWTError as error:
        raise TokenRefused(f"invalid token: {error}") from None
    for claim in ("sub", "name", "role"):
        value = claims[claim]
        if not isinstance(value, str) or not value.strip():
            raise TokenRefused(f"token's {claim!r} claim must be a non-empty string")
    if claims["role"] not in ROLES:
        raise TokenRefused(f"token names an unknown role {claims['role']!r}; roles are {', '.join(ROLES)}")
    return Identity(subject=claims["sub"].strip(), name=claims["name"].strip(), role=claims["role"])


def _key_for(settings: Settings, algorithm: str) -> Any:
    # Each algorithm has its own key, and the token's header only chooses among them: a public key is never
    # tried as an HMAC secret, which would let anyone who has the public key sign tokens.
    if algorithm == "HS256":
        if not settings.jwt_secret:
            raise TokenRefused("HS256 tokens are not accepted here")
        return settings.jwt_secret.get_secret_value()
    if algorithm in ("RS256", "ES256"):
        if not settings.jwt_public_key:
            raise TokenRefused(f"{algorithm} tokens are not accepted here: no PSSYNC_JWT_PUBLIC_KEY")
        key, key_algorithm = _public_key(settings.jwt_public_key)
        if key_algorithm != algorithm:
            raise TokenRefused(f"{algorithm} token, but the configured public key is for {key_algorithm}")
        return key
    raise TokenRefused(f"tokens signed with {algorithm!r} are not accepted")


@lru_cache(maxsize=4)
def _public_key(configured: str) -> tuple[Any, str]:
    pem = configured if "-----BEGIN" in configured else Path(configured).read_text()
    key = load_pem_public_key(pem.encode())
    if isinstance(key, RSAPublicKey):
        return key, "RS256"
    if isinstance(key, EllipticCurvePublicKey):
        return key, "ES256"
    raise ValueError("PSSYNC_JWT_PUBLIC_KEY must be an RSA or EC public key")


def mint_dev_token(
    settings: Settings,
    name: str,
    role: str,
    *,
    subject: str | None = None,
    valid_for: timedelta = timedelta(hours=8),
    now: datetime | None = None,
) -> str:
    """A person's HS256 token signed with the development secret, for tests and the local stack."""
    if settings.environment == PRODUCTION:
        raise RuntimeError("development tokens are never minted in production: use the identity provider")
    if not settings.jwt_secret:
        raise RuntimeError("no PSSYNC_JWT_SECRET to sign a development token with")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    issued = now or datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": subject or f"dev:{uuid.uuid5(uuid.NAMESPACE_URL, name)}",
        "name": name,
        "role": role,
        "iat": issued,
        "exp": issued + valid_for,
    }
    if settings.jwt_issuer:
        claims["iss"] = settings.jwt_issuer
    if settings.jwt_audience:
        claims["aud"] = settings.jwt_audience
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")
