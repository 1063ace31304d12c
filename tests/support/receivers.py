"""What alerts are sent to in tests: an SMTP server and a webhook receiver on 127.0.0.1 free ports, each
keeping what it received.

The SMTP server speaks enough of RFC 5321 for Python's smtplib (EHLO/HELO, MAIL, RCPT, DATA with
dot-unstuffing, RSET, NOOP, QUIT), on its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage


@dataclass
class SmtpServer:
    host: str = "127.0.0.1"
    port: int = 0
    received: list[ReceivedMail] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self.received)

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(f"{line}\r\n".encode())
            await writer.drain()

        sender, recipients = "", []
        await reply("220 pssync-test ESMTP")
        try:
            while True:
                raw = await reader.readline()
                if not raw:
                    return
                command = raw.decode("utf-8", "replace").rstrip("\r\n")
                verb = command[:4].upper()
                if verb == "EHLO":
                    await reply("250-pssync-test")
                    await reply("250 8BITMIME")
                elif verb == "HELO":
                    await reply("250 pssync-test")
                elif verb == "MAIL":
                    sender, recipients = _address(command), []
                    await reply("250 OK")
                elif verb == "RCPT":
                    recipients.append(_address(command))
                    await reply("250 OK")
                elif verb == "DATA":
                    await reply("354 end with <CRLF>.<CRLF>")
                    lines = []
                    while True:
                        line = await reader.readline()
                        if line in (b".\r\n", b".\n", b""):
                            break
                        lines.append(line[1:] if line.startswith(b"..") else line)
                    parsed = message_from_bytes(b"".join(lines), policy=policy.default)
                    assert isinstance(parsed, EmailMessage)
                    with self._lock:
                        self.received.append(ReceivedMail(sender, recipients, parsed))
                    await reply("250 OK queued")
                elif verb in ("RSET", "NOOP"):
                    await reply("250 OK")
                elif verb == "QUIT":
                    await reply("221 bye")
                    return
                else:
                    await reply("502 not implemented")
        finally:
            writer.close()


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        holder["server"] = await asyncio.start_server(server._session, server.host, 0)
        server.port = holder["server"].sockets[0].getsockname()[1]
        started.set()

    thread = threading.Thread(target=loop.run_forever, name="smtp-test", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(serve(), loop)
    if not started.wait(10):
        raise RuntimeError("the test SMTP server did not start")
    try:
        yield server
    finally:

        async def stop() -> None:
            holder["server"].close()
            await holder["server"].wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@dataclass
class WebhookReceiver:
    url: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    # What POSTs are answered with: a test sets an error status to make the channel fail.
    status: int = 200
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def payloads(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.received)


@contextmanager
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            code = receiver.status
            if code < 300:
                with receiver._lock:
                    receiver.received.append(json.loads(body))
            self.send_response(code)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if code < 300 else b"unavailable")

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="webhook-test", daemon=True)
    thread.start()
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/pssync"
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _address(command: str) -> str:
    found = re.search(r"<([^>]*)>", command)
    return found.group(1) if found else command.partition(":")[2].strip()


def wait_until(condition: Callable[[], bool], *, seconds: float = 30.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.05)
