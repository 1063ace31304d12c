"""Every workspace page under one router, for the ingress to include."""

from __future__ import annotations

from fastapi import APIRouter

from ingress.workspace import exception_desk, health_page, inbox, sign_in

router = APIRouter()
for part in (sign_in.router, inbox.router, exception_desk.router, health_page.router):
    router.include_router(part)
