"""The NetSuite sandbox app: REST web services for one account, plus /_sandbox/ control endpoints (not
NetSuite's)."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request, Response

from sandboxes.faults import FaultMiddleware
from sandboxes.netsuite import replies
from sandboxes.netsuite.config import NetSuiteSandboxConfig
from sandboxes.netsuite.control_routes import add_control_routes
from sandboxes.netsuite.governance import GOVERNED_PREFIX, GovernanceMiddleware
from sandboxes.netsuite.replies import NetSuiteError
from sandboxes.netsuite.routes import add_routes
from sandboxes.netsuite.sandbox import NetSuiteSandbox


def _rate_limited(scope: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return replies.concurrency_refused_parts()


def _server_error(scope: Any) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return replies.unexpected_parts()


def create_app(config: NetSuiteSandboxConfig | None = None) -> FastAPI:
    config = config or NetSuiteSandboxConfig()
    sandbox = NetSuiteSandbox(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            sandbox.store.close()

    app = FastAPI(title="NetSuite sandbox (ps-sync)", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.sandbox = sandbox

    @app.exception_handler(NetSuiteError)
    async def netsuite_error(request: Request, err: NetSuiteError) -> Response:
        return replies.error(err)

    add_routes(app, sandbox)
    add_control_routes(app, sandbox)
    # Added innermost first: governance wraps the faults, so injected latency holds a concurrency slot.
    app.add_middleware(
        FaultMiddleware,
        plan=sandbox.plan,
        rate_limited=_rate_limited,
        server_error=_server_error,
        exempt_prefixes=("/_sandbox", "/services/rest/auth"),
    )
    app.add_middleware(GovernanceMiddleware, governance=sandbox.governance)
    app.add_middleware(_StatusCounter, statuses=sandbox.statuses)
    return app


class _StatusCounter:
    """Counts REST web services answers by status, the 429s and faults answered before the API included."""

    def __init__(self, app: Any, *, statuses: Counter[int]) -> None:
        self.app = app
        self.statuses = statuses

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(GOVERNED_PREFIX):
            await self.app(scope, receive, send)
            return

        async def counting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting)
