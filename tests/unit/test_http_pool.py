"""Connectors must not send a request on a connection the server is about to drop for being idle."""

from __future__ import annotations

import asyncio
import time

import httpx
import uvicorn

from connectors.http import IDLE_CONNECTION_SECONDS, build_client

SERVER_IDLE_CLOSE = IDLE_CONNECTION_SECONDS + 1.0
REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


async def _racing_server() -> tuple[asyncio.Server, int, list[str]]:
    """Answers on keep-alive connections, but a request arriving on a connection that has been idle for
    SERVER_IDLE_CLOSE is dropped unanswered: the moment a real server closes an idle connection."""
    outcomes: list[str] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        last = time.monotonic()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                if time.monotonic() - last >= SERVER_IDLE_CLOSE:
                    outcomes.append("dropped")
                    return
                writer.write(REPLY)
                await writer.drain()
                outcomes.append("answered")
                last = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], outcomes


async def test_a_connection_idle_past_the_expiry_is_not_reused() -> None:
    server, port, outcomes = await _racing_server()
    client = build_client(base_url=f"http://127.0.0.1:{port}")
    try:
        assert (await client.get("/first")).status_code == 200
        await asyncio.sleep(SERVER_IDLE_CLOSE + 0.2)
        # On the old, idle connection this request would be dropped and fail with a transport error.
        assert (await client.get("/second")).status_code == 200
        assert outcomes == ["answered", "answered"]
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


async def test_the_same_server_drops_a_request_on_a_stale_connection() -> None:
    """The check above means something: without the expiry the stale connection is reused and fails."""
    server, port, outcomes = await _racing_server()
    limits = httpx.Limits(keepalive_expiry=60.0)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits)
    try:
        assert (await client.get("/first")).status_code == 200
        await asyncio.sleep(SERVER_IDLE_CLOSE + 0.2)
        try:
            await client.get("/second")
        except httpx.TransportError:
            pass
        assert outcomes == ["answered", "dropped"]
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()


def test_the_expiry_is_shorter_than_the_keep_alive_of_the_servers_we_run() -> None:
    assert IDLE_CONNECTION_SECONDS < uvicorn.Config(app=None).timeout_keep_alive
