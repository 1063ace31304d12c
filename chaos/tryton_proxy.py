"""A fault-injecting reverse proxy in front of Tryton, standing where a load balancer would.

Tryton is a real server, not a sandbox, so its faults come from in front of it: the worker's Tryton URL
points here, and every JSON-RPC call is forwarded with httpx unless the FaultPlan (the sandboxes' own,
same seed rules, same counters) decides otherwise. The replies are a load balancer's (HAProxy's default
error pages): 503 when no server is available, 429 with Retry-After, 504 when the server did not answer in
time, 502 when Tryton cannot be reached at all. A dropped call never reaches Tryton; a call whose reply is
lost ran in Tryton (the party or invoice exists) and the connection is cut on the way back.

Control paths, as on the sandboxes: `PUT /_sandbox/faults`, `GET /_sandbox/stats`, `GET /_sandbox/health`.

`python -m chaos.tryton_proxy --port 18100 --upstream http://127.0.0.1:18000`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import httpx
import uvicorn
from pydantic import ValidationError

from sandboxes.faults import (
    FaultConfig,
    FaultPlan,
    Receive,
    Scope,
    Send,
    caller_selected,
    cut_connection,
    reply,
    swallow,
)

HTML = [(b"content-type", b"text/html"), (b"cache-control", b"no-cache")]
# What HAProxy answers on its own (its default error pages).
UNAVAILABLE = (
    b"<html><body><h1>503 Service Unavailable</h1>\n"
    b"No server is available to handle this request.\n</body></html>\n"
)
TOO_MANY = (
    b"<html><body><h1>429 Too Many Requests</h1>\n"
    b"You have sent too many requests in a given amount of time.\n</body></html>\n"
)
GATEWAY_TIMEOUT = (
    b"<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in time.\n</body></html>\n"
)
BAD_GATEWAY = (
    b"<html><body><h1>502 Bad Gateway</h1>\n"
    b"The server returned an invalid or incomplete response.\n</body></html>\n"
)
# The Retry-After a 429 carries unless the fault config says otherwise (a load balancer's rate limit is
# usually per second or so).
DEFAULT_RETRY_AFTER = 2
# Tryton may take a while over a posting; the client's own timeout (30 s) ends a call first.
UPSTREAM_TIMEOUT = httpx.Timeout(120.0, connect=5.0)
# Methods that only read: anything else may change Tryton's books, so its reply can be lost after the fact.
READ_METHODS = frozenset(
    {
        "search",
        "search_count",
        "search_read",
        "read",
        "fields_get",
        "default_get",
        "get_preferences",
        "view_get",
        "fields_view_get",
        "autocomplete",
        "login",
        "logout",
        "version",
        "list",
        "list_lang",
        "server_version",
    }
)
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"content-length",
        b"host",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-connection",
    }
)


def rpc_method(body: bytes) -> str:
    """The JSON-RPC method a request calls ("" when the body is not a JSON-RPC call)."""
    try:
        call = json.loads(body)
    except ValueError:
        return ""
    method = call.get("method") if isinstance(call, dict) else None
    return method if isinstance(method, str) else ""


def changes_state(method: str) -> bool:
    return bool(method) and method.rsplit(".", 1)[-1] not in READ_METHODS


class TrytonFaultProxy:
    """The ASGI app: control paths, then faults, then forwarding to `upstream`."""

    def __init__(self, upstream: str, plan: FaultPlan | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.plan = plan or FaultPlan()
        self.counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._http: httpx.AsyncClient | None = None

    def _count(self, name: str) -> None:
        with self._counts_lock:
            self.counts[name] += 1

    def stats(self) -> dict[str, Any]:
        with self._counts_lock:
            counts = dict(self.counts)
        return {**counts, "faults": dict(self.plan.injected), "config": self.plan.config.model_dump()}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        if scope["path"].startswith("/_sandbox/"):
            await self._control(scope, body, send)
            return
        self._count("calls")
        config = self.plan.config
        if not caller_selected(config, scope):
            await self._forward(scope, body, send)
            return
        fault, delay = self.plan.choose_call_fault(writes=changes_state(rpc_method(body)))
        if delay:
            await asyncio.sleep(delay)
        if fault is None:
            await self._forward(scope, body, send)
        elif fault == "server_error":
            await reply(send, 503, HTML, UNAVAILABLE)
        elif fault == "rate_limited":
            retry_after = config.retry_after_seconds
            seconds = DEFAULT_RETRY_AFTER if retry_after is None else retry_after
            await reply(send, 429, [*HTML, (b"retry-after", str(seconds).encode())], TOO_MANY)
        elif fault == "timeout":
            await asyncio.sleep(config.timeout_seconds)
            await reply(send, 504, HTML, GATEWAY_TIMEOUT)
        elif fault == "dropped":
            await cut_connection(send, "connection dropped before the call reached Tryton")
        else:
            await self._forward(scope, body, swallow)
            await cut_connection(send, "reply lost after Tryton ran the call")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._http = httpx.AsyncClient(base_url=self.upstream, timeout=UPSTREAM_TIMEOUT)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._http is not None:
                    await self._http.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> None:
        if self._http is None:
            self._http = httpx.AsyncClient(base_url=self.upstream, timeout=UPSTREAM_TIMEOUT)
        query = scope.get("query_string", b"").decode("latin-1")
        url = scope["path"] + (f"?{query}" if query else "")
        headers = [
            (key.decode("latin-1"), value.decode("latin-1"))
            for key, value in scope.get("headers", ())
            if key.lower() not in HOP_BY_HOP
        ]
        try:
            response = await self._http.request(scope["method"], url, content=body, headers=headers)
        except httpx.HTTPError:
            self._count("upstream_errors")
            await reply(send, 502, HTML, BAD_GATEWAY)
            return
        self._count("forwarded")
        kept = [
            (key.encode("latin-1"), value.encode("latin-1"))
            for key, value in response.headers.multi_items()
            if key.lower().encode("latin-1") not in HOP_BY_HOP and key.lower() != "content-encoding"
        ]
        await reply(send, response.status_code, kept, response.content)

    async def _control(self, scope: Scope, body: bytes, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == "/_sandbox/health" and method == "GET":
            await _json(send, 200, {"status": "ok", "upstream": self.upstream})
        elif path == "/_sandbox/stats" and method == "GET":
            await _json(send, 200, self.stats())
        elif path == "/_sandbox/faults" and method == "PUT":
            try:
                config = FaultConfig.model_validate_json(body)
            except ValidationError as err:
                await _json(send, 422, {"detail": json.loads(err.json())})
                return
            self.plan.configure(config)
            await _json(send, 200, config.model_dump())
        else:
            await _json(send, 404, {"detail": f"no control {method} {path}"})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _json(send: Send, status: int, payload: Any) -> None:
    await reply(send, status, [(b"content-type", b"application/json")], json.dumps(payload).encode())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m chaos.tryton_proxy", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="Tryton's base URL, e.g. http://127.0.0.1:18000")
    args = parser.parse_args(argv)
    app = TrytonFaultProxy(args.upstream)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
