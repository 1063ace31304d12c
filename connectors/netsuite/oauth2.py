"""OAuth 2.0 client credentials (machine to machine): a JWT assertion signed with the certificate's key.

From NetSuite's "OAuth 2.0 Client Credentials Flow" pages (docs.oracle.com/en/cloud/saas/netsuite/
ns-online-help/section_162755359851.html, "The Request Token Structure" section_162790605110.html):

- POST {account host}/services/rest/auth/oauth2/v1/token, form-encoded: grant_type=client_credentials,
  client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer, client_assertion=<JWT>;
- the JWT header is typ JWT, alg one of PS256/PS384/PS512/ES256/ES384/ES512, kid the certificate id NetSuite
  gave when the public certificate was mapped to the integration; its payload is iss (the integration's client
  id), scope (rest_webservices), aud (the token endpoint URL), iat, and exp less than 60 minutes after iat;
- the answer is {"access_token", "expires_in" (3600), "token_type": "bearer"}; the token lives 60 minutes and
  there is no refresh token in this flow: a new assertion buys a new token.

A 401 on a token we believed valid is answered once by a fresh token (as connectors.http does for the other
OAuth2 vendors); a second 401 is the caller's AuthFailed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from connectors.errors import AuthFailed, RateLimited, Unavailable

TOKEN_PATH = "/services/rest/auth/oauth2/v1/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SCOPE = ["rest_webservices"]
# NetSuite wants exp less than 60 minutes after iat; the assertion is used at once, so a few minutes do.
ASSERTION_SECONDS = 300
_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def load_private_key(pem_or_path: str) -> rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey:
    """The certificate's private key, from PEM text or the path of a PEM file."""
    text = pem_or_path.strip()
    data = text.encode() if text.startswith("-----BEGIN") else Path(text).read_bytes()
    key = load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("NetSuite signs client assertions with an RSA or EC key")
    return key


def algorithm_for(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    """PS256 for RSA (NetSuite takes RSASSA-PSS, no longer PKCS#1 v1.5 RS256); ES256/384/512 by EC curve."""
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    try:
        return _EC_ALGORITHMS[key.curve.name]
    except KeyError:
        raise ValueError(f"NetSuite takes EC keys on P-256, P-384 or P-521, not {key.curve.name}") from None


class ClientCredentialsAuth(httpx.Auth):
    requires_response_body = True

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        certificate_id: str,
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
        system: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not client_id or not certificate_id:
            raise ValueError("OAuth 2.0 client credentials need the client id and the certificate id")
        self.token_url = token_url
        self._client_id = client_id
        self._certificate_id = certificate_id
        self._key = private_key
        self._algorithm = algorithm_for(private_key)
        self._system = system
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.token_fetches = 0

    def assertion(self) -> str:
        now = int(self._clock())
        payload: dict[str, Any] = {
            "iss": self._client_id,
            "scope": SCOPE,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_SECONDS,
            # Not required by NetSuite; makes each assertion unique so none can be replayed as another.
            "jti": str(uuid.uuid4()),
        }
        headers = {"typ": "JWT", "kid": self._certificate_id}
        return jwt.encode(payload, self._key, algorithm=self._algorithm, headers=headers)

    def _token_request(self) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.token_url,
            data={
                "grant_type": "client_credentials",
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.assertion(),
            },
            headers={"Accept": "application/json"},
        )

    def _accept(self, response: httpx.Response) -> None:
        status = response.status_code
        if status >= 500:
            raise Unavailable(
                f"NetSuite's token endpoint answered {status}", system=self._system, status_code=status
            )
        if status == 429:
            raise RateLimited("NetSuite's token endpoint is rate limited", system=self._system)
        if status != 200:
            raise AuthFailed(
                f"NetSuite refused the client assertion ({status}): {response.text[:300]}",
                system=self._system,
                status_code=status,
            )
        body = response.json()
        # expires_in arrives as "3600" (a string) in NetSuite's examples; a number is taken too.
        lifetime = float(body.get("expires_in", 3600))
        self._token = str(body["access_token"])
        self._expires_at = time.monotonic() + lifetime - 60
        self.token_fetches += 1

    def _valid(self) -> bool:
        return self._token is not None and self._expires_at > time.monotonic()

    async def async_auth_flow(self, request: httpx.Request) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if not self._valid():
            async with self._lock:
                if not self._valid():
                    response = yield self._token_request()
                    await response.aread()
                    self._accept(response)
        sent_with = self._token
        request.headers["Authorization"] = f"Bearer {sent_with}"
        response = yield request
        await response.aread()
        if response.status_code == 401:
            async with self._lock:
                if self._token == sent_with:
                    fresh = yield self._token_request()
                    await fresh.aread()
                    self._accept(fresh)
            request.headers["Authorization"] = f"Bearer {self._token}"
            yield request

    def sync_auth_flow(self, request: httpx.Request) -> Any:
        raise RuntimeError("connectors are async only")

    def forget_token(self) -> None:
        self._token = None
