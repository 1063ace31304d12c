"""Idempotency-Key on Xero writes (developer.xero.com/documentation/guides/idempotent-requests/idempotency).

A key is remembered per tenant for the window with a fingerprint of the request (method, path, query,
body). The same key with the same request gets the stored response back, without touching the books;
the same key with a different request is refused (422); a second request while the first is still being
processed is refused (409). Only successful responses are stored, so a corrected request after a
validation error goes through.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass

from sandboxes.store import SandboxStore

MAX_KEY_LENGTH = 128  # "128 character max." (Idempotency-Key parameter, xero_accounting.yaml)


@dataclass(frozen=True)
class Stored:
    status: int
    body: bytes
    media_type: str


class KeyInUse(Exception):
    def __init__(self, detail: str, status: int) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status


def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (method.upper().encode(), path.encode(), "&".join(sorted(query.split("&"))).encode(), body):
        digest.update(part)
        digest.update(b"\x00")
    return digest.hexdigest()


class IdempotencyKeys:
    def __init__(self, store: SandboxStore, window_seconds: int) -> None:
        self._store = store
        self.window_seconds = window_seconds
        self._in_flight: set[str] = set()
        self._lock = threading.Lock()
        self.replays = 0

    def _slot(self, tenant: str, key: str) -> str:
        return f"{tenant}:{key}"

    def begin(self, tenant: str, key: str, print_: str) -> Stored | None:
        """The stored response to replay, or None when the caller should process the request."""
        slot = self._slot(tenant, key)
        with self._lock:
            record = self._store.collection("idempotency").get(slot)
            if record is not None and record["at"] + self.window_seconds > time.time():
                if record["fingerprint"] != print_:
                    raise KeyInUse(f"Idempotency-Key {key!r} was already used for a different request.", 422)
                self.replays += 1
                return Stored(record["status"], record["body"].encode("utf-8"), record["media_type"])
            if slot in self._in_flight:
                raise KeyInUse(f"A request with Idempotency-Key {key!r} is still being processed.", 409)
            self._in_flight.add(slot)
            return None

    def finish(self, tenant: str, key: str, print_: str, stored: Stored | None) -> None:
        slot = self._slot(tenant, key)
        with self._lock:
            self._in_flight.discard(slot)
            if stored is not None and 200 <= stored.status < 300:
                self._store.collection("idempotency").put(
                    slot,
                    {
                        "fingerprint": print_,
                        "status": stored.status,
                        "body": stored.body.decode("utf-8"),
                        "media_type": stored.media_type,
                        "at": time.time(),
                    },
                )
