"""Outbound messages as Salesforce sends them: a durable queue of notifications, delivered as SOAP
`notifications` calls of up to 100, retried with exponential back-off until the listener acknowledges
with <Ack>true</Ack>, and dropped after 24 hours.

Following "Understanding Notifications": the record's data is read when the message is sent, not when
the notification was queued, so a listener sees the latest values; retries are independent of queue
order, and a message may arrive more than once (the FaultPlan decides duplicates and reordering).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any
from xml.sax.saxutils import escape

import httpx
from defusedxml import ElementTree

from sandboxes.faults import FaultPlan
from sandboxes.salesforce import ids
from sandboxes.salesforce.config import SalesforceSandboxConfig
from sandboxes.salesforce.org import Org
from sandboxes.store import Collection, Doc

log = logging.getLogger(__name__)

OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
QUEUE = "_outbound_queue"


def _soap_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # SOAP dateTime values are UTC with a Z, where REST writes +0000.
    if len(text) == 28 and text.endswith("+0000") and text[10] == "T":
        text = text[:-5] + "Z"
    return escape(text)


def render_envelope(
    *,
    org_id: str,
    action_id: str,
    base_url: str,
    api_version: str,
    notifications: list[tuple[str, str, Doc]],
    fields: list[str],
) -> bytes:
    """The SOAP request of one notifications() call: (notification id, sObject type, record) triples."""
    version = api_version.lstrip("v")
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
        " <soapenv:Body>",
        f'  <notifications xmlns="{OUTBOUND_NS}">',
        f"   <OrganizationId>{escape(org_id)}</OrganizationId>",
        f"   <ActionId>{escape(action_id)}</ActionId>",
        '   <SessionId xsi:nil="true"/>',
        f"   <EnterpriseUrl>{escape(base_url)}/services/Soap/c/{version}/{org_id[:15]}</EnterpriseUrl>",
        f"   <PartnerUrl>{escape(base_url)}/services/Soap/u/{version}/{org_id[:15]}</PartnerUrl>",
    ]
    for notification_id, sobject, record in notifications:
        lines += [
            "   <Notification>",
            f"    <Id>{escape(notification_id)}</Id>",
            f'    <sObject xsi:type="sf:{sobject}" xmlns:sf="{SOBJECT_NS}">',
            f"     <sf:Id>{escape(record['Id'])}</sf:Id>",
        ]
        for name in fields:
            value = record.get(name)
            # Null fields are left out of the message, as Salesforce does.
            if name != "Id" and value is not None:
                lines.append(f"     <sf:{name}>{_soap_value(value)}</sf:{name}>")
        lines += ["    </sObject>", "   </Notification>"]
    lines += ["  </notifications>", " </soapenv:Body>", "</soapenv:Envelope>"]
    return "\n".join(lines).encode()


def is_ack(status_code: int, body: bytes) -> bool:
    if status_code != 200:
        return False
    try:
        root = ElementTree.fromstring(body)
    except Exception:
        return False
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] == "Ack":
            return (element.text or "").strip().lower() == "true"
    return False


class OutboundQueue:
    def __init__(self, org: Org, config: SalesforceSandboxConfig, plan: FaultPlan) -> None:
        self._org = org
        self._config = config
        self._plan = plan
        self.endpoint_url = config.outbound_url
        self.attempts: deque[dict[str, Any]] = deque(maxlen=1000)
        self.delivered = 0
        self.dropped = 0
        self.messages_sent = 0
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._http: httpx.AsyncClient | None = None

    @property
    def _queue(self) -> Collection:
        # Looked up each time: a sandbox reset replaces the store's collections.
        return self._org.store.collection(QUEUE)

    # ----- queueing -------------------------------------------------------------------------------

    def enqueue(self, record_ids: list[str]) -> None:
        now = time.time()
        for record_id in record_ids:
            notification_id = ids.make_id(
                "OutboundNotification", self._org.store.next_number("seq:notification")
            )
            self._queue.put(
                notification_id,
                {
                    "Id": notification_id,
                    "sobject": "Opportunity",
                    "record_id": record_id,
                    "queued_at": now,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "last_error": None,
                },
            )
        self._wake.set()

    def pending(self) -> list[Doc]:
        return sorted(self._queue, key=lambda doc: (doc["queued_at"], doc["Id"]))

    def clear(self) -> None:
        for doc in list(self._queue):
            self._queue.delete(doc["Id"])
        self.attempts.clear()
        self.delivered = self.dropped = self.messages_sent = 0

    def snapshot(self) -> dict[str, Any]:
        return {
            "endpoint_url": self.endpoint_url,
            "pending": self.pending(),
            "attempts": list(self.attempts),
            "delivered": self.delivered,
            "dropped": self.dropped,
            "messages_sent": self.messages_sent,
        }

    # ----- delivery -------------------------------------------------------------------------------

    async def run(self) -> None:
        """The background sender: wakes on new notifications or every poll interval."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._config.outbound_poll_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.deliver_due()
            except Exception:  # the sender must outlive any one bad round
                log.exception("outbound delivery round failed")

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def deliver_due(self, *, force: bool = False) -> dict[str, Any]:
        async with self._lock:
            now = time.time()
            due: list[Doc] = []
            for doc in self.pending():
                if now - doc["queued_at"] > self._config.outbound_max_age_seconds:
                    self._queue.delete(doc["Id"])
                    self.dropped += 1
                    log.warning(
                        "outbound notification %s dropped after %.0fs undelivered",
                        doc["Id"],
                        now - doc["queued_at"],
                    )
                elif force or doc["next_attempt_at"] <= now:
                    due.append(doc)
            if not due or not self.endpoint_url:
                return {"messages": 0, "acknowledged": 0, "failed": 0, "pending": len(self._queue)}
            messages = self._messages(self._plan.deliveries(due))
            acknowledged: set[str] = set()
            failed: dict[str, str] = {}
            for notifications in messages:
                ok, error = await self._send(notifications)
                notification_ids = [doc["Id"] for doc, _ in notifications]
                if ok:
                    acknowledged.update(notification_ids)
                else:
                    failed.update({notification_id: error for notification_id in notification_ids})
            for notification_id in acknowledged:
                if self._queue.get(notification_id) is not None:
                    self._queue.delete(notification_id)
                    self.delivered += 1
            retry_at = time.time()
            for notification_id, error in failed.items():
                queued = self._queue.get(notification_id)
                if queued is None or notification_id in acknowledged:
                    continue
                attempts = queued["attempts"] + 1
                delay = min(
                    self._config.outbound_retry_base_seconds * 2 ** (attempts - 1),
                    self._config.outbound_retry_max_seconds,
                )
                self._queue.update(
                    notification_id,
                    {"attempts": attempts, "next_attempt_at": retry_at + delay, "last_error": error},
                )
            return {
                "messages": len(messages),
                "acknowledged": len(acknowledged),
                "failed": len(set(failed) - acknowledged),
                "pending": len(self._queue),
            }

    def _messages(self, deliveries: list[Doc]) -> list[list[tuple[Doc, Doc]]]:
        """Group notifications into SOAP messages of at most N, never one notification twice in a message."""
        messages: list[list[tuple[Doc, Doc]]] = []
        current: list[tuple[Doc, Doc]] = []
        for doc in deliveries:
            record = self._org.get(doc["sobject"], doc["record_id"])
            if record is None:
                # The record was deleted before we could send: nothing left to describe.
                self._queue.delete(doc["Id"])
                continue
            if len(current) >= self._config.outbound_max_per_message or any(
                queued["Id"] == doc["Id"] for queued, _ in current
            ):
                messages.append(current)
                current = []
            current.append((doc, record))
        if current:
            messages.append(current)
        return messages

    async def _send(self, notifications: list[tuple[Doc, Doc]]) -> tuple[bool, str]:
        assert self.endpoint_url is not None
        body = render_envelope(
            org_id=self._config.org_id,
            action_id=self._config.outbound_action_id,
            base_url=self._config.base_url(),
            api_version=self._config.latest_api_version,
            notifications=[(doc["Id"], doc["sobject"], record) for doc, record in notifications],
            fields=self._config.outbound_fields,
        )
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._config.outbound_timeout_seconds)
        attempt: dict[str, Any] = {
            "at": time.time(),
            "notification_ids": [doc["Id"] for doc, _ in notifications],
            "status_code": None,
            "acknowledged": False,
            "error": None,
        }
        self.messages_sent += 1
        try:
            response = await self._http.post(
                self.endpoint_url,
                content=body,
                headers={
                    "Content-Type": "text/xml; charset=utf-8",
                    "SOAPAction": '""',
                    "User-Agent": "Salesforce-Outbound-Messaging/sandbox",
                },
            )
        except httpx.HTTPError as exc:
            attempt["error"] = f"{type(exc).__name__}: {exc}"
            self.attempts.append(attempt)
            return False, attempt["error"]
        attempt["status_code"] = response.status_code
        acknowledged = is_ack(response.status_code, response.content)
        attempt["acknowledged"] = acknowledged
        if not acknowledged:
            attempt["error"] = f"HTTP {response.status_code}: {response.text[:200]}"
        self.attempts.append(attempt)
        return acknowledged, attempt["error"] or ""
