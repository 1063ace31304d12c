"""Token-based authentication as NetSuite checks it: the OAuth 1.0a header of RFC 5849, HMAC-SHA256 only,
the account's realm, a fresh timestamp and a nonce never seen before.

The signature base string is rebuilt from the request as it arrived: method, scheme and host (lower case)
with a non-default port, the path as sent (still percent-encoded), and the query string's parameters with
the oauth_* ones from the header except realm and oauth_signature, each percent-encoded, sorted, joined.
The key is consumer secret & token secret, each percent-encoded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote

_PARAM = re.compile(r'\s*([A-Za-z_]+)\s*=\s*"([^"]*)"\s*')


def percent(value: str) -> str:
    return quote(value, safe="-._~")


def parse_header(authorization: str) -> dict[str, str] | None:
    """The OAuth header's parameters, decoded; None when the header is not OAuth or is malformed."""
    scheme, _, rest = authorization.partition(" ")
    if scheme.lower() != "oauth":
        return None
    params: dict[str, str] = {}
    for part in rest.split(","):
        if not part.strip():
            continue
        match = _PARAM.fullmatch(part)
        if match is None:
            return None
        params[match.group(1)] = unquote(match.group(2))
    return params


def signature_base(
    method: str, scheme: str, host: str, raw_path: str, query: str, oauth: dict[str, str]
) -> str:
    hostname, _, port = host.lower().partition(":")
    if port and int(port) == {"http": 80, "https": 443}.get(scheme.lower()):
        port = ""
    uri = f"{scheme.lower()}://{hostname}{':' + port if port else ''}{raw_path}"
    pairs = parse_qsl(query, keep_blank_values=True)
    pairs += [(k, v) for k, v in oauth.items() if k not in ("realm", "oauth_signature")]
    normalized = "&".join(f"{k}={v}" for k, v in sorted((percent(k), percent(v)) for k, v in pairs))
    return f"{method.upper()}&{percent(uri)}&{percent(normalized)}"


def sign(base: str, consumer_secret: str, token_secret: str) -> str:
    key = f"{percent(consumer_secret)}&{percent(token_secret)}".encode()
    return base64.b64encode(hmac.new(key, base.encode(), hashlib.sha256).digest()).decode()


@dataclass(frozen=True)
class TbaCredentials:
    realm: str
    consumer_key: str
    consumer_secret: str
    token_id: str
    token_secret: str


class NonceRegistry:
    """Nonces seen within the timestamp window: a signed request replayed inside it is refused."""

    def __init__(self, window_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._window = window_seconds
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def first_use(self, token: str, nonce: str) -> bool:
        now = self._clock()
        with self._lock:
            self._seen = {key: at for key, at in self._seen.items() if now - at <= self._window * 2}
            if (token, nonce) in self._seen:
                return False
            self._seen[(token, nonce)] = now
            return True


def verify(
    *,
    method: str,
    scheme: str,
    host: str,
    raw_path: str,
    query: str,
    authorization: str,
    credentials: TbaCredentials,
    nonces: NonceRegistry,
    tolerance_seconds: int,
    now: float,
) -> str | None:
    """None when the request is signed as NetSuite requires; else why it is not (for the sandbox's log)."""
    oauth = parse_header(authorization)
    if oauth is None:
        return "not an OAuth header"
    if oauth.get("realm") != credentials.realm:
        return f"realm {oauth.get('realm')!r} is not this account's ({credentials.realm})"
    if oauth.get("oauth_signature_method") != "HMAC-SHA256":
        return f"signature method {oauth.get('oauth_signature_method')!r} is not HMAC-SHA256"
    if oauth.get("oauth_version", "1.0") != "1.0":
        return "oauth_version must be 1.0"
    if oauth.get("oauth_consumer_key") != credentials.consumer_key:
        return "unknown consumer key"
    if oauth.get("oauth_token") != credentials.token_id:
        return "unknown token"
    try:
        stamp = int(oauth.get("oauth_timestamp", ""))
    except ValueError:
        return "oauth_timestamp is not a number"
    if abs(now - stamp) > tolerance_seconds:
        return "oauth_timestamp is outside the allowed window"
    nonce = oauth.get("oauth_nonce", "")
    if not 6 <= len(nonce) <= 64:
        return "oauth_nonce must be 6 to 64 characters"
    expected = sign(
        signature_base(method, scheme, host, raw_path, query, oauth),
        credentials.consumer_secret,
        credentials.token_secret,
    )
    try:
        given = base64.b64decode(oauth.get("oauth_signature", ""), validate=True)
    except (binascii.Error, ValueError):
        return "oauth_signature is not base64"
    if not hmac.compare_digest(given, base64.b64decode(expected)):
        return "signature does not match"
    if not nonces.first_use(credentials.token_id, nonce):
        return "nonce already used"
    return None
