"""Business health at a glance, for everyone who may read it: the facts `ingress.health_facts` gathers (the
same ones `GET /health/facts` serves), rendered for people."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from ingress.exceptions_api import ledger
from ingress.health_facts import HEALTH_READERS, gather_health
from ingress.workspace.browser_auth import SignInNeeded, current_person
from ingress.workspace.rendering import page, to_sign_in
from ledger.database import Database

router = APIRouter()

HEALTH = "/workspace/health"


@router.get(HEALTH, include_in_schema=False)
async def health(request: Request, database: Database = Depends(ledger)) -> Response:
    try:
        person = current_person(request)
    except SignInNeeded as needed:
        return to_sign_in(request, needed)
    if person.role not in HEALTH_READERS:
        return Response(f"role {person.role!r} may not read the business health", status_code=403)
    facts = await gather_health(database, request.app.state.temporal, request.app.state.settings)
    return page(request, "health.html", person, title="Business health", facts=facts)
