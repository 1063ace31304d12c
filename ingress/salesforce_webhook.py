"""Salesforce Outbound Messages: authenticate, validate, start the deal's workflow, then acknowledge."""

from __future__ import annotations

import secrets

import structlog
from fastapi import APIRouter, Request, Response
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from connectors.salesforce.outbound import (
    OutboundMessageError,
    ack_envelope,
    org_ids_match,
    parse_outbound_message,
    soap_fault,
)
from ingress.errors import RETRY_AFTER, temporal_unavailable
from runs.starts import start_opportunity_to_project

router = APIRouter()
log = structlog.get_logger("ingress.salesforce")

SOAP = "text/xml; charset=utf-8"
CLOSED_WON = "Closed Won"


def _fault(status: int, message: str) -> Response:
    server_side = status >= 500
    return Response(
        soap_fault(message, code="soapenv:Server" if server_side else "soapenv:Client"),
        status_code=status,
        media_type=SOAP,
        headers=RETRY_AFTER if status == 503 else None,
    )


@router.post("/webhooks/salesforce/outbound-messages")
async def outbound_message(request: Request, token: str | None = None) -> Response:
    settings = request.app.state.settings
    # Outbound messages carry no signature; the endpoint URL configured in Salesforce holds our token.
    # Compared as bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
    if token is None or not secrets.compare_digest(
        token.encode(), settings.salesforce_outbound_token.get_secret_value().encode()
    ):
        return _fault(401, "endpoint credential missing or wrong")
    try:
        message = parse_outbound_message(await request.body())
    except OutboundMessageError as err:
        return _fault(422, f"malformed outbound message: {err}")
    if not org_ids_match(settings.salesforce_org_id, message.organization_id):
        return _fault(401, f"organization {message.organization_id} is not the configured org")

    wrong_type = [n.notification_id for n in message.notifications if n.sobject_type != "Opportunity"]
    if wrong_type:
        return _fault(422, f"notifications {wrong_type} are not about an Opportunity")

    client = request.app.state.temporal
    started: list[str] = []
    for notification in message.notifications:
        won = notification.fields.get("IsWon") == "true" or notification.fields.get("StageName") == CLOSED_WON
        if not won:
            continue
        try:
            started.append(
                await start_opportunity_to_project(
                    client,
                    settings,
                    crm=settings.crm,
                    opportunity_id=notification.sobject_id,
                    notification_id=notification.notification_id,
                )
            )
        except (RPCError, RPCTimeoutOrCancelledError, RuntimeError) as err:
            if isinstance(err, RuntimeError) and not temporal_unavailable(err):
                raise
            # Not acknowledged, so Salesforce delivers the whole message again later.
            log.warning(
                "outbound_message_not_acked", reason=str(err), notification_id=notification.notification_id
            )
            return _fault(503, "could not record the notification durably; retry later")
    log.info("outbound_message_acked", notifications=len(message.notifications), workflows=started)
    return Response(ack_envelope(True), media_type=SOAP)
