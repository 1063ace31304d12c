"""The ingress: vendor webhooks in, approvals and exception actions from people, health for ops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from temporalio.client import Client

from pssync.codec import EncryptionCodec
from pssync.ingress import approvals, codec_server, exceptions_api, ops_page, salesforce_webhook, xero_webhook
from pssync.settings import Settings
from pssync.temporal_client import connect_client


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.temporal = client or await connect_client(settings)
        yield

    app = FastAPI(title="ps-sync ingress", lifespan=lifespan)
    app.state.settings = settings
    app.state.codec = EncryptionCodec.from_settings(settings)
    # Only the Temporal Web UI calls us from a browser, for the codec endpoints.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=[settings.temporal_ui_url],
        allow_methods=["POST", "OPTIONS"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        allow_credentials=True,
    )
    app.include_router(salesforce_webhook.router)
    app.include_router(xero_webhook.router)
    app.include_router(approvals.router)
    app.include_router(exceptions_api.router)
    app.include_router(ops_page.router)
    app.include_router(codec_server.router)

    @app.exception_handler(RequestValidationError)
    async def name_the_fields(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"][1:]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)

    @app.get("/healthz")
    async def healthz(request: Request) -> dict[str, str]:
        temporal: Client = request.app.state.temporal
        await temporal.service_client.check_health()
        return {"status": "ok", "namespace": temporal.namespace}

    return app
