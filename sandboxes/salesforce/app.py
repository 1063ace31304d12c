"""The Salesforce sandbox: an org behind Salesforce's REST API, OAuth token endpoint and outbound messages.

Vendor paths:  POST /services/oauth2/token, /services/data/ (versions), /services/data/vXX.X/...
Control paths: /_sandbox/faults, /_sandbox/reset, /_sandbox/expire-tokens, /_sandbox/stats,
               /_sandbox/health, /_sandbox/limits, /_sandbox/outbound[/flush|/endpoint]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, Field

from sandboxes import exact_json
from sandboxes.faults import FaultConfig, FaultMiddleware, FaultPlan, Scope
from sandboxes.salesforce.auth import TokenEndpoint
from sandboxes.salesforce.config import SalesforceSandboxConfig
from sandboxes.salesforce.errors import SfError, json_parser_error, session_expired
from sandboxes.salesforce.org import Org
from sandboxes.salesforce.outbound import OutboundQueue
from sandboxes.salesforce.rest import Reply, RestApi
from sandboxes.store import SandboxStore

JSON_TYPE = "application/json;charset=UTF-8"


class LimitsUpdate(BaseModel):
    daily_api_limit: int | None = Field(default=None, ge=1)
    enforce_api_limit: bool | None = None
    used: int | None = Field(default=None, ge=0)


class EndpointUpdate(BaseModel):
    url: str | None


class ApiUsage:
    """The org's daily API request count, as reported in Sforce-Limit-Info."""

    def __init__(self, limit: int, enforce: bool) -> None:
        self.limit = limit
        self.enforce = enforce
        self.used = 0

    def header(self) -> str:
        return f"api-usage={self.used}/{self.limit}"

    def exhausted(self) -> bool:
        return self.enforce and self.used >= self.limit


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    content = b"" if body is None and status in (204, 304) else exact_json.dumps(body).encode()
    return Response(
        content=content,
        status_code=status,
        headers=headers or {},
        media_type=None if status == 204 else JSON_TYPE,
    )


def create_app(config: SalesforceSandboxConfig | None = None) -> FastAPI:
    config = config or SalesforceSandboxConfig()
    store = SandboxStore(config.state_path)
    plan = FaultPlan(config.faults)
    usage = ApiUsage(config.daily_api_limit, config.enforce_api_limit)
    counters: Counter[str] = Counter()
    queue_holder: list[OutboundQueue] = []
    org = Org(
        store,
        org_id=config.org_id,
        default_currency=config.default_currency,
        on_closed_won=lambda record_ids: queue_holder[0].enqueue(record_ids),
    )
    queue = OutboundQueue(org, config, plan)
    queue_holder.append(queue)
    tokens = TokenEndpoint(config, org)

    def limits() -> dict[str, Any]:
        return {
            "DailyApiRequests": {"Max": usage.limit, "Remaining": max(0, usage.limit - usage.used)},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "HourlyODataCallout": {"Max": 10000, "Remaining": 10000},
        }

    api = RestApi(org, latest_version=config.latest_api_version, limits=limits)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sender = asyncio.create_task(queue.run(), name="salesforce-outbound")
        try:
            yield
        finally:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
            await queue.aclose()
            store.close()

    app = FastAPI(title="Salesforce sandbox", lifespan=lifespan)
    app.state.config = config
    app.state.org = org
    app.state.plan = plan
    app.state.queue = queue
    app.state.tokens = tokens
    app.state.usage = usage

    def limit_exceeded(message: str) -> Response:
        counters["rate_limited"] += 1
        return _json(
            403,
            [{"message": message, "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            {"Sforce-Limit-Info": usage.header()},
        )

    # ----- OAuth ----------------------------------------------------------------------------------

    @app.post("/services/oauth2/token")
    async def token(request: Request) -> Response:
        counters["token_requests"] += 1
        form = dict(parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True))
        status, body = tokens.token(
            form, request.headers.get("authorization"), str(request.base_url).rstrip("/")
        )
        return _json(status, body, {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"})

    # ----- REST API -------------------------------------------------------------------------------

    @app.get("/services/data")
    @app.get("/services/data/")
    async def versions() -> Response:
        # The versions resource needs no session and does not count against the org's limits.
        return _json(200, api.versions())

    @app.api_route("/services/data/{path:path}", methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
    async def rest(path: str, request: Request) -> Response:
        counters["calls"] += 1
        if tokens.check(request.headers.get("authorization")) is None:
            error = session_expired()
            return _json(error.status, error.body(), error.headers)
        if usage.exhausted():
            return limit_exceeded("TotalRequests Limit exceeded.")
        usage.used += 1
        raw = await request.body()
        body: Any = None
        if raw and request.method in ("POST", "PATCH", "PUT"):
            try:
                body = exact_json.loads(raw)
            except ValueError as exc:
                error = json_parser_error(f"Unexpected character in the request body: {exc}")
                return _json(error.status, error.body(), {"Sforce-Limit-Info": usage.header()})
        # The still-encoded path, so an external id holding '/' or '%' survives as one segment.
        raw_path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0]
        encoded = raw_path[len("/services/data/") :] if raw_path.startswith("/services/data/") else path
        reply: Reply = api.handle(
            request.method,
            encoded,
            dict(request.query_params),
            {k.lower(): v for k, v in request.headers.items()},
            body,
        )
        return _json(reply.status, reply.body, {**reply.headers, "Sforce-Limit-Info": usage.header()})

    # ----- control --------------------------------------------------------------------------------

    @app.get("/_sandbox/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "org_id": config.org_id}

    @app.put("/_sandbox/faults")
    async def set_faults(faults: FaultConfig) -> dict[str, Any]:
        plan.configure(faults)
        return faults.model_dump()

    @app.post("/_sandbox/reset")
    async def reset() -> dict[str, str]:
        store.reset()
        org.reseed()
        queue.clear()
        usage.used = 0
        counters.clear()
        plan.configure(config.faults)
        return {"status": "reset"}

    @app.post("/_sandbox/expire-tokens")
    async def expire_tokens() -> dict[str, str]:
        tokens.issuer.expire_all()
        return {"status": "expired"}

    @app.put("/_sandbox/limits")
    async def set_limits(update: LimitsUpdate) -> dict[str, Any]:
        if update.daily_api_limit is not None:
            usage.limit = update.daily_api_limit
        if update.enforce_api_limit is not None:
            usage.enforce = update.enforce_api_limit
        if update.used is not None:
            usage.used = update.used
        return {"daily_api_limit": usage.limit, "enforce_api_limit": usage.enforce, "used": usage.used}

    @app.get("/_sandbox/stats")
    async def stats() -> dict[str, Any]:
        injected = dict(plan.injected)
        return {
            "calls": counters["calls"],
            "token_requests": counters["token_requests"],
            "tokens_issued": tokens.issuer.issued_count,
            "api_usage": {"used": usage.used, "limit": usage.limit, "enforced": usage.enforce},
            "injected_faults": injected,
            # Salesforce has no 429: request-limit refusals are 403 REQUEST_LIMIT_EXCEEDED.
            "rate_limited": counters["rate_limited"] + injected.get("rate_limited", 0),
            "outbound": {
                "pending": len(queue.pending()),
                "delivered": queue.delivered,
                "dropped": queue.dropped,
                "messages_sent": queue.messages_sent,
            },
        }

    @app.get("/_sandbox/outbound")
    async def outbound() -> dict[str, Any]:
        return queue.snapshot()

    @app.post("/_sandbox/outbound/flush")
    async def flush() -> dict[str, Any]:
        return await queue.deliver_due(force=True)

    @app.put("/_sandbox/outbound/endpoint")
    async def set_endpoint(update: EndpointUpdate) -> dict[str, str | None]:
        queue.endpoint_url = update.url
        return {"url": queue.endpoint_url}

    def injected_limit(_: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        # The concurrent long-running request limit is the transient one, so faults use its message.
        body = [{"message": "ConcurrentPerOrgLongTxn Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        return (
            403,
            [(b"content-type", JSON_TYPE.encode()), (b"sforce-limit-info", usage.header().encode())],
            exact_json.dumps(body).encode(),
        )

    def injected_server_error(_: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        body = [
            {
                "message": "An unexpected error occurred. Please include this ErrorId if you contact "
                "support: 1085196135-38807 (-1438373212)",
                "errorCode": "UNKNOWN_EXCEPTION",
            }
        ]
        return 500, [(b"content-type", JSON_TYPE.encode())], exact_json.dumps(body).encode()

    app.add_middleware(
        FaultMiddleware,
        plan=plan,
        rate_limited=injected_limit,
        server_error=injected_server_error,
        exempt_prefixes=("/_sandbox", "/services/oauth2"),
    )
    return app


__all__ = ["SalesforceSandboxConfig", "SfError", "create_app"]
