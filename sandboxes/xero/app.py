"""The Xero sandbox: identity (token, connections) and the Accounting API subset ps-sync uses.

Paths, payloads and errors follow specs/xero/xero_accounting.yaml and developer.xero.com; the tests
validate every response against that spec. Control endpoints under /_sandbox/ are not part of Xero.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from sandboxes.faults import FaultMiddleware
from sandboxes.xero import replies
from sandboxes.xero.accounting_api import API, AccountingApi
from sandboxes.xero.accounting_routes import add_accounting_routes
from sandboxes.xero.config import XeroSandboxConfig
from sandboxes.xero.control_routes import add_control_routes
from sandboxes.xero.identity import add_identity_routes
from sandboxes.xero.journal_routes import add_journal_routes
from sandboxes.xero.ratelimit import RateLimitMiddleware
from sandboxes.xero.sandbox import XeroSandbox

# The package exports the sandbox's state from here.
__all__ = ["XeroSandbox", "create_app"]


def _rate_limited_reply(scope: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return replies.rate_limited_parts("minute", 60)


def _server_error_reply(scope: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return replies.unavailable_parts()


def create_app(config: XeroSandboxConfig | None = None) -> FastAPI:
    config = config or XeroSandboxConfig()
    sandbox = XeroSandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await sandbox.webhooks.start()
        try:
            yield
        finally:
            await sandbox.webhooks.stop()
            sandbox.store.close()

    app = FastAPI(title="Xero sandbox (ps-sync)", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox
    # Added innermost first: the limiter wraps the faults, so injected latency holds a concurrency slot
    # just as a slow Xero would.
    app.add_middleware(
        FaultMiddleware,
        plan=sandbox.plan,
        rate_limited=_rate_limited_reply,
        server_error=_server_error_reply,
        exempt_prefixes=("/_sandbox", "/connect"),
    )
    app.add_middleware(RateLimitMiddleware, limiter=sandbox.limiter)
    add_identity_routes(app, sandbox)
    add_accounting_routes(app, AccountingApi(sandbox))
    add_journal_routes(app, AccountingApi(sandbox))
    add_control_routes(app, sandbox)

    app.add_middleware(_StatusCounter, statuses=sandbox.statuses)
    return app


class _StatusCounter:
    """Counts accounting API answers by status, including the 429s and faults answered before the API."""

    def __init__(self, app: Any, *, statuses: Counter[int]) -> None:
        self.app = app
        self.statuses = statuses

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API):
            await self.app(scope, receive, send)
            return

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting)
