"""Token-based authentication (TBA): NetSuite's OAuth 1.0a, every request signed with HMAC-SHA256.

Written from RFC 5849 and NetSuite's "The Signature for Web Services and RESTlets" and "The Authorization
Headers" (docs.oracle.com/en/cloud/saas/netsuite/ns-online-help/section_1534941088.html and
section_1534941295.html):

- the signature base string is METHOD & enc(base URI) & enc(normalised parameters), where the parameters are
  the query string's and the oauth_* ones (never `realm`, never `oauth_signature`; a JSON body is not signed),
  each percent-encoded (RFC 3986 unreserved characters kept), sorted by name then value, joined with `&`;
- the key is enc(consumer secret) & enc(token secret); the signature is base64(HMAC-SHA256(key, base string));
- the header is `OAuth realm="<account>", oauth_consumer_key=..., oauth_token=..., oauth_signature_method=
  "HMAC-SHA256", oauth_timestamp=..., oauth_nonce=..., oauth_version="1.0", oauth_signature=...`, the realm
  being the account id in upper case with `_` (1234567_SB1), while the host carries it in lower case with
  `-` (1234567-sb1.suitetalk.api.netsuite.com).

HMAC-SHA1 is no longer accepted (since 2023.1), and from 2027.1 NetSuite creates no new TBA integrations:
OAuth 2.0 client credentials (oauth2.py) is the scheme to choose for a new deployment.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Generator, Iterable
from urllib.parse import parse_qsl, quote, urlsplit

import httpx

SIGNATURE_METHOD = "HMAC-SHA256"
OAUTH_VERSION = "1.0"


def enc(value: str) -> str:
    """RFC 5849 section 3.6 percent-encoding: everything but ALPHA, DIGIT, '-', '.', '_', '~'."""
    return quote(value, safe="-._~")


def base_uri(url: str) -> str:
    """Scheme and host in lower case, the port only when it is not the scheme's default, the path as sent."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    default = {"http": 80, "https": 443}.get(scheme)
    authority = host if port is None or port == default else f"{host}:{port}"
    return f"{scheme}://{authority}{parts.path or '/'}"


def normalized_parameters(parameters: Iterable[tuple[str, str]]) -> str:
    encoded = sorted((enc(name), enc(value)) for name, value in parameters)
    return "&".join(f"{name}={value}" for name, value in encoded)


def base_string(method: str, url: str, oauth_parameters: Iterable[tuple[str, str]]) -> str:
    query = parse_qsl(urlsplit(url).query, keep_blank_values=True)
    parameters = [*query, *((name, value) for name, value in oauth_parameters if name != "realm")]
    return "&".join((method.upper(), enc(base_uri(url)), enc(normalized_parameters(parameters))))


def signature(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{enc(consumer_secret)}&{enc(token_secret)}".encode()
    digest = hmac.new(key, base.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def realm_of(account_id: str) -> str:
    """The realm as TBA wants it: 1234567_SB1 for the account whose host reads 1234567-sb1."""
    return account_id.strip().upper().replace("-", "_")


class TokenBasedAuth(httpx.Auth):
    """Signs each request as it leaves; nothing to refresh, so a 401 is final (AuthFailed)."""

    def __init__(
        self,
        *,
        account_id: str,
        consumer_key: str,
        consumer_secret: str,
        token_id: str,
        token_secret: str,
        clock: Callable[[], float] = time.time,
        nonce: Callable[[], str] = lambda: secrets.token_hex(16),
    ) -> None:
        if not all((account_id, consumer_key, consumer_secret, token_id, token_secret)):
            raise ValueError("TBA needs the account id, consumer key and secret, token id and secret")
        self.realm = realm_of(account_id)
        self._consumer_key = consumer_key
        self._consumer_secret = consumer_secret
        self._token_id = token_id
        self._token_secret = token_secret
        self._clock = clock
        self._nonce = nonce

    def authorization(self, method: str, url: str) -> str:
        oauth = [
            ("oauth_consumer_key", self._consumer_key),
            ("oauth_token", self._token_id),
            ("oauth_signature_method", SIGNATURE_METHOD),
            ("oauth_timestamp", str(int(self._clock()))),
            ("oauth_nonce", self._nonce()),
            ("oauth_version", OAUTH_VERSION),
        ]
        signed = signature(base_string(method, url, oauth), self._consumer_secret, self._token_secret)
        fields = [("realm", self.realm), *oauth, ("oauth_signature", signed)]
        return "OAuth " + ", ".join(f'{name}="{enc(value)}"' for name, value in fields)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self.authorization(request.method, str(request.url))
        yield request
