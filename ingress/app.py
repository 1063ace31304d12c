"""The ingress: vendor webhooks in, approvals and exception actions from people, health for ops."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from temporalio.client import Client, RPCTimeoutOrCancelledError
from temporalio.service import RPCError

from config import Settings
from ingress import (
    account_mappings,
    approvals,
    billing_actions,
    codec_server,
    exceptions_api,
    health_facts,
    metrics,
    month_end,
    ops_page,
    run_status,
    salesforce_webhook,
    xero_webhook,
)
from ingress.errors import RETRY_AFTER, CatchAll, install_handlers, temporal_unavailable
from ingress.limits import BodyLimits
from ingress.workspace import routes as workspace
from runs.client import connect_client
from runs.codec import EncryptionCodec

# A health check that waits longer than a load balancer's probe is no answer at all.
HEALTH_TIMEOUT = timedelta(seconds=3)


def create_app(settings: Settings | None = None, *, client: Client | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Lazily: the ingress starts, and answers 503 with Retry-After, while Temporal is still down.
        app.state.temporal = client or await connect_client(settings, lazy=True)
        yield

    app = FastAPI(title="ps-sync ingress", lifespan=lifespan)
    app.state.settings = settings
    app.state.codec = EncryptionCodec.from_settings(settings)
    # Inside CORS, so a browser can read the refusals these answer.
    app.add_middleware(BodyLimits)
    app.add_middleware(CatchAll)
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
    app.include_router(billing_actions.router)
    app.include_router(exceptions_api.router)
    app.include_router(account_mappings.router)
    app.include_router(ops_page.router)
    app.include_router(month_end.router)
    app.include_router(run_status.router)
    app.include_router(codec_server.router)
    app.include_router(health_facts.router)
    app.include_router(metrics.router)
    app.include_router(workspace.router)

    install_handlers(app)

    @app.exception_handler(RequestValidationError)
    async def name_the_fields(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"][1:]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return JSONResponse({"detail": "invalid request", "problems": problems}, status_code=422)

    @app.get("/healthz", responses={503: {"description": "Temporal unavailable; retry after Retry-After"}})
    async def healthz(request: Request) -> dict[str, str]:
        temporal: Client = request.app.state.temporal
        try:
            await temporal.service_client.check_health(timeout=HEALTH_TIMEOUT)
        except (RPCError, RPCTimeoutOrCancelledError, ConnectionError, TimeoutError, RuntimeError) as error:
            if not temporal_unavailable(error):
                raise
            raise HTTPException(503, f"Temporal is unavailable: {error}", headers=RETRY_AFTER) from error
        return {"status": "ok", "namespace": temporal.namespace}

    return app
