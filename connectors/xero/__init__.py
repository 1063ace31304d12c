"""Xero (ERP of the UK entity): the Accounting API client, the ERP connector and webhook helpers."""

from connectors.xero.client import ElementResult, RemainingLimits, XeroClient, XeroRateLimited
from connectors.xero.connector import XeroConnector
from connectors.xero.webhooks import (
    SIGNATURE_HEADER,
    MalformedWebhook,
    XeroWebhook,
    XeroWebhookEvent,
    parse_webhook,
    signature,
    verify_signature,
)

__all__ = [
    "SIGNATURE_HEADER",
    "ElementResult",
    "MalformedWebhook",
    "RemainingLimits",
    "XeroClient",
    "XeroConnector",
    "XeroRateLimited",
    "XeroWebhook",
    "XeroWebhookEvent",
    "parse_webhook",
    "signature",
    "verify_signature",
]
