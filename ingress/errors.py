"""How the ingress answers what its endpoints did not: Temporal out of reach, and anything unexpected.

Temporal out of reach is a 503 with Retry-After wherever it surfaces, so callers (people, Salesforce, load
balancers) wait and retry rather than treat it as a bug. Anything else unexpected is a 500 with a generic
body; the traceback goes to the log, rendered as text, and never to the caller.
"""

from __future__ import annotations

import traceback

import structlog
from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

log = structlog.get_logger("ingress.errors")

RETRY_AFTER_SECONDS = 5
RETRY_AFTER = {"Retry-After": str(RETRY_AFTER_SECONDS)}
# What Temporal answers when it (or the network to it) is down or overloaded, as opposed to refusing the call.
TEMPORAL_UNAVAILABLE = frozenset(
    {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED}
)


# How the SDK reports that a lazily connected client could not reach the server on first use.
_CONNECT_FAILED = "Failed client connect"


def temporal_unavailable(error: BaseException) -> bool:
    if isinstance(error, RPCError):
        return error.status in TEMPORAL_UNAVAILABLE
    if isinstance(error, RuntimeError):
        return str(error).startswith(_CONNECT_FAILED)
    return isinstance(error, RPCTimeoutOrCancelledError | ConnectionError | TimeoutError)


def unavailable(message: str = "Temporal is unavailable; retry shortly") -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=503, headers=RETRY_AFTER)


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(RPCError)
    async def temporal_refused(request: Request, error: Exception) -> Response:
        if temporal_unavailable(error):
            log.warning("temporal_unavailable", path=request.url.path, reason=str(error))
            return unavailable()
        log.warning("temporal_refused", path=request.url.path, reason=str(error))
        return JSONResponse({"detail": "Temporal refused the call"}, status_code=502)

    @app.exception_handler(RuntimeError)
    async def never_connected(request: Request, error: Exception) -> Response:
        if not temporal_unavailable(error):
            raise error
        log.warning("temporal_unavailable", path=request.url.path, reason=str(error))
        return unavailable()

    @app.exception_handler(RPCTimeoutOrCancelledError)
    @app.exception_handler(ConnectionError)
    @app.exception_handler(TimeoutError)
    async def out_of_reach(request: Request, error: Exception) -> Response:
        log.warning(
            "dependency_unavailable", path=request.url.path, reason=str(error) or type(error).__name__
        )
        return unavailable("a service the ingress depends on is unavailable; retry shortly")

    @app.exception_handler(StarletteHTTPException)
    async def with_retry_after(request: Request, error: Exception) -> Response:
        assert isinstance(error, StarletteHTTPException)
        # The endpoints' own 503s (Temporal down, a start that did not happen) say when to come back too.
        if error.status_code == 503 and "retry-after" not in {k.lower() for k in (error.headers or {})}:
            error.headers = {**(error.headers or {}), **RETRY_AFTER}
        return await http_exception_handler(request, error)


class CatchAll:
    """The last resort: an exception no handler took becomes a generic 500, logged with its traceback.

    Outside the routing's own handlers, so it also sees what escapes them; it does not re-raise, so the
    server does not log the exception a second time without its traceback.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as error:
            log.error(
                "unhandled_exception",
                method=scope.get("method"),
                path=scope.get("path"),
                error=f"{type(error).__name__}: {error}",
                response_started=started,
                # Rendered here: the log's JSON renderer would print an exc_info tuple as its repr.
                exception="".join(traceback.format_exception(error)),
            )
            if started:
                return
            response = JSONResponse({"detail": "internal error"}, status_code=500)
            await response(scope, receive, send)
