"""Xero webhooks as the ingress receives them (developer.xero.com/documentation/guides/webhooks/overview).

Xero signs the raw request body: `x-xero-signature` = base64(HMAC-SHA256(webhook key, body)). The ingress
must answer 200 with no body to a correctly signed request and 401 to anything else; that is also how
Xero's "intent to receive" handshake checks a new endpoint (a payload with no events, sequences 0).
Signatures are checked on the exact bytes received: re-serialising the JSON would change them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SIGNATURE_HEADER = "x-xero-signature"


def signature(raw_body: bytes, key: str) -> str:
    return base64.b64encode(hmac.new(key.encode("utf-8"), raw_body, hashlib.sha256).digest()).decode("ascii")


def verify_signature(raw_body: bytes, signature_header: str | None, key: str) -> bool:
    """True only for the exact signature of these bytes under this key, compared in constant time."""
    if not signature_header or not key:
        return False
    try:
        given = base64.b64decode(signature_header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(key.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(given, expected)


class MalformedWebhook(ValueError):
    """The body is not a Xero webhook payload; the message says what is wrong."""


class XeroWebhookEvent(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    resource_url: str = Field(alias="resourceUrl")
    resource_id: str = Field(alias="resourceId")
    event_date_utc: datetime = Field(alias="eventDateUtc")
    event_type: Literal["CREATE", "UPDATE"] = Field(alias="eventType")
    event_category: Literal["CONTACT", "INVOICE", "CREDITNOTE", "SUBSCRIPTION"] = Field(alias="eventCategory")
    tenant_id: str = Field(alias="tenantId")
    tenant_type: Literal["ORGANISATION", "APPLICATION"] = Field(alias="tenantType")

    @field_validator("event_date_utc")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Xero writes eventDateUtc without an offset ("2024-06-21T01:15:39.902"): it is UTC by name.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class XeroWebhook(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    events: tuple[XeroWebhookEvent, ...]
    first_event_sequence: int = Field(alias="firstEventSequence", ge=0)
    last_event_sequence: int = Field(alias="lastEventSequence", ge=0)
    entropy: str

    @property
    def is_intent_to_receive(self) -> bool:
        """The handshake payload: nothing to process, only the signature to check."""
        return not self.events and self.first_event_sequence == 0 and self.last_event_sequence == 0


def parse_webhook(raw_body: bytes) -> XeroWebhook:
    try:
        document = json.loads(raw_body)
    except (ValueError, RecursionError) as exc:
        # ValueError also covers bad UTF-8 and integers longer than the interpreter converts; RecursionError
        # is nesting deeper than the parser's stack.
        raise MalformedWebhook(f"Xero webhook body is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise MalformedWebhook(f"Xero webhook body must be a JSON object, got {type(document).__name__}")
    try:
        return XeroWebhook.model_validate(document)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['msg']}"
            for error in exc.errors()
        )
        raise MalformedWebhook(f"Xero webhook payload is invalid: {problems}") from exc
