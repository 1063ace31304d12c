"""Xero's side of webhooks: batch events, sign them, deliver them, retry, and run intent-to-receive.

Payloads follow xero-webhooks.yaml (`events[]`, `firstEventSequence`, `lastEventSequence`, `entropy`) and
developer.xero.com/documentation/guides/webhooks/configuring-your-server: the receiver must answer within
5 seconds, 200 with no body for a good signature and 401 for a bad one; Xero retries undelivered payloads
with decreasing frequency. Duplicate and out-of-order delivery come from the sandbox's FaultPlan.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import json
import random
import string
import time
from collections import Counter, deque
from datetime import UTC, datetime
from typing import Any

import httpx

from sandboxes.faults import FaultPlan
from sandboxes.store import SandboxStore
from sandboxes.xero.config import WebhookConfig

RESOURCE_BASE = "https://api.xero.com/api.xro/2.0"
_RESOURCES = {"INVOICE": "Invoices", "CONTACT": "Contacts", "CREDITNOTE": "CreditNotes"}
ITR_ROUNDS = 4  # Xero sends a series of correctly and incorrectly signed payloads

# developer.xero.com/documentation/guides/webhooks/configuring-your-server: Xero hashes the raw payload with
# HMAC-SHA256 under the app's webhook key and sends the base64 of the digest in this header.
SIGNATURE_HEADER = "x-xero-signature"


def sign(body: bytes, webhook_key: str) -> str:
    return base64.b64encode(hmac.digest(webhook_key.encode("utf-8"), body, "sha256")).decode("ascii")


def _entropy() -> str:
    return "".join(random.choices(string.ascii_uppercase, k=20))


def _event_time() -> str:
    # Xero writes eventDateUtc with milliseconds and no offset.
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


class WebhookSender:
    def __init__(
        self, config: WebhookConfig, *, plan: FaultPlan, store: SandboxStore, tenant_id: str
    ) -> None:
        self.config = config
        self._plan = plan
        self._store = store
        self._tenant_id = tenant_id
        self._pending: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()  # set whenever a batch leaves or a delivery ends
        self._runner: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self.stats: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=500)
        self.intent: dict[str, Any] = {"status": "NOT_RUN"}

    def configure(self, config: WebhookConfig) -> None:
        self.config = config

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.config.timeout_seconds)
        self._runner = asyncio.create_task(self._run(), name="xero-webhooks")

    async def stop(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
        for task in list(self._deliveries):
            task.cancel()
        await asyncio.gather(
            *([self._runner] if self._runner else []), *self._deliveries, return_exceptions=True
        )
        if self._client is not None:
            await self._client.aclose()

    def reset(self) -> None:
        self._pending.clear()
        self.stats.clear()
        self.log.clear()
        self.intent = {"status": "NOT_RUN"}

    @property
    def idle(self) -> bool:
        return not self._pending and not self._deliveries

    def publish(self, category: str, event_type: str, resource_id: str) -> None:
        """Queue one event; it leaves with the next batch. Nothing is queued while no URL is configured."""
        if not self.config.url:
            return
        self._pending.append(
            {
                "resourceUrl": f"{RESOURCE_BASE}/{_RESOURCES[category]}/{resource_id}",
                "resourceId": resource_id,
                "eventDateUtc": _event_time(),
                "eventType": event_type,
                "eventCategory": category,
                "tenantId": self._tenant_id,
                "tenantType": "ORGANISATION",
                "_sequence": self._store.next_number(f"{self._tenant_id}:webhook-sequence"),
            }
        )
        self.stats["events"] += 1
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await asyncio.sleep(self.config.batch_window_ms / 1000)
            events, self._pending = self._pending, []
            self._progress.set()
            if not events:
                continue
            delivered = self._plan.deliveries(events)
            size = self.config.max_events_per_payload
            for start in range(0, len(delivered), size):
                payload = self._payload(delivered[start : start + size])
                task = asyncio.create_task(self._deliver(payload))
                self._deliveries.add(task)
                task.add_done_callback(self._delivery_done)
                # Payloads leave in order; each one's retries run on their own schedule.
                await asyncio.sleep(0)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._progress.set()

    async def wait_idle(self, timeout_seconds: float) -> bool:
        """Wait until every queued event has been delivered or given up; False if time ran out first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_seconds
        while not self.idle:
            self._progress.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
        return True

    @staticmethod
    def _payload(events: list[dict[str, Any]]) -> bytes:
        sequences = [event["_sequence"] for event in events]
        body = {
            "events": [{k: v for k, v in event.items() if not k.startswith("_")} for event in events],
            "firstEventSequence": min(sequences),
            "lastEventSequence": max(sequences),
            "entropy": _entropy(),
        }
        return json.dumps(body, separators=(",", ":")).encode("utf-8")

    async def _post(
        self, url: str, body: bytes, signed_with: str
    ) -> tuple[int | None, bytes, float, str | None]:
        assert self._client is not None
        started = time.monotonic()
        try:
            response = await self._client.post(
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    SIGNATURE_HEADER: sign(body, signed_with),
                },
            )
        except httpx.HTTPError as exc:
            return None, b"", time.monotonic() - started, f"{type(exc).__name__}: {exc}"
        return response.status_code, response.content, time.monotonic() - started, None

    async def _deliver(self, body: bytes) -> None:
        delays = (0.0, *self.config.retry_delays_seconds)
        for attempt, delay in enumerate(delays, start=1):
            if delay:
                await asyncio.sleep(delay)
            url = self.config.url
            if not url:
                self.stats["dropped_no_url"] += 1
                return
            status, _, elapsed, error = await self._post(url, body, self.config.key)
            ok = status is not None and 200 <= status < 300
            self.log.append(
                {
                    "attempt": attempt,
                    "status": status,
                    "error": error,
                    "ok": ok,
                    "elapsed_ms": round(elapsed * 1000),
                    "body": body.decode("utf-8"),
                }
            )
            self.stats["attempts"] += 1
            if ok:
                self.stats["delivered"] += 1
                return
            self.stats["failed_attempts"] += 1
        self.stats["gave_up"] += 1

    async def intent_to_receive(self) -> dict[str, Any]:
        """Xero's handshake: every good signature must get 200 with no body, every bad one 401, within 5 s."""
        if not self.config.url:
            self.intent = {"status": "FAILED", "reason": "no delivery URL configured", "checks": []}
            return self.intent
        checks = []
        for round_ in range(ITR_ROUNDS):
            correct = round_ % 2 == 0
            body = json.dumps(
                {"events": [], "lastEventSequence": 0, "firstEventSequence": 0, "entropy": _entropy()},
                separators=(",", ":"),
            ).encode("utf-8")
            key = self.config.key if correct else self.config.key + "-not-the-key"
            status, content, elapsed, error = await self._post(self.config.url, body, key)
            expected = 200 if correct else 401
            checks.append(
                {
                    "correctly_signed": correct,
                    "expected_status": expected,
                    "status": status,
                    "error": error,
                    "elapsed_ms": round(elapsed * 1000),
                    "body_empty": content == b"",
                    "ok": status == expected and elapsed <= self.config.timeout_seconds and content == b"",
                }
            )
        self.intent = {"status": "OK" if all(c["ok"] for c in checks) else "FAILED", "checks": checks}
        return self.intent

    def snapshot(self) -> dict[str, Any]:
        return {
            "url": self.config.url,
            "pending": len(self._pending),
            "in_delivery": len(self._deliveries),
            "intent_to_receive": self.intent["status"],
            **self.stats,
        }
