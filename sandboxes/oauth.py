"""Bearer tokens for the sandboxes' OAuth2 endpoints: issued, checked, and expired on demand."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass


@dataclass
class Issued:
    client_id: str
    expires_at: float


class TokenIssuer:
    def __init__(self, clients: dict[str, str], lifetime_seconds: int = 1800) -> None:
        self._clients = dict(clients)
        self.lifetime_seconds = lifetime_seconds
        self._tokens: dict[str, Issued] = {}
        self._lock = threading.Lock()
        self.issued_count = 0

    def client_valid(self, client_id: str | None, client_secret: str | None) -> bool:
        if client_id is None or client_secret is None:
            return False
        expected = self._clients.get(client_id)
        return expected is not None and secrets.compare_digest(expected, client_secret)

    def issue(self, client_id: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = Issued(
                client_id=client_id, expires_at=time.monotonic() + self.lifetime_seconds
            )
            self.issued_count += 1
        return token

    def check(self, token: str | None) -> Issued | None:
        if not token:
            return None
        issued = self._tokens.get(token)
        if issued is None or issued.expires_at <= time.monotonic():
            return None
        return issued

    def expire_all(self) -> None:
        """Make every issued token stale, so tests can watch a connector refresh."""
        with self._lock:
            for issued in self._tokens.values():
                issued.expires_at = 0.0


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() not in ("bearer", "oauth"):
        return None
    return value.strip() or None
