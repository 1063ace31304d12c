"""Xero webhooks: verify the signature, answer within Xero's deadline, nudge the invoice's run."""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Header, Request, Response

from connectors.xero.webhooks import MalformedWebhook, parse_webhook, verify_signature
from ingress.limits import too_deep
from runs.invoice_to_cash import InvoiceChanged
from runs.invoice_to_cash import workflow_id as invoice_to_cash_id
from runs.starts import signal_if_running

router = APIRouter()
log = structlog.get_logger("ingress.xero")


@router.post("/webhooks/xero")
async def xero_webhook(request: Request, x_xero_signature: str | None = Header(default=None)) -> Response:
    settings = request.app.state.settings
    # Xero's intent-to-receive check expects exactly 401 for a bad signature, with an empty body. Without a
    # signature there is nothing to check, so the body is not even read.
    if not x_xero_signature:
        return Response(status_code=401)
    body = await request.body()
    if not verify_signature(body, x_xero_signature, settings.xero_webhook_key.get_secret_value()):
        return Response(status_code=401)
    # Only now: nesting is checked on a body known to come from Xero, so a forger learns nothing from it.
    refused = too_deep(body)
    if refused:
        return Response(f"malformed webhook: {refused}", status_code=400, media_type="text/plain")
    try:
        webhook = parse_webhook(body)
    except MalformedWebhook as err:
        return Response(f"malformed webhook: {err}", status_code=422, media_type="text/plain")
    client = request.app.state.temporal
    delivered = 0
    for event in webhook.events:
        if event.event_category != "INVOICE" or event.tenant_id != settings.xero_tenant_id:
            continue
        if await signal_if_running(
            client,
            invoice_to_cash_id("xero", event.resource_id),
            "invoice_changed",
            InvoiceChanged(
                event_type=event.event_type, event_id=f"{event.resource_id}:{event.event_date_utc}"
            ),
        ):
            delivered += 1
    log.info("xero_webhook_received", events=len(webhook.events), signalled=delivered)
    return Response(status_code=200)
