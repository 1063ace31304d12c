"""The stack a chaos run shakes: `make run`'s topology with two workers and Tryton behind a fault proxy.

Every port is free-picked below the kernel's ephemeral range, so a restarted Temporal server finds its port
still free (an outgoing connection could otherwise take it as a source port while the server is down).
The supervisor `make run` uses restarts what dies (the killed workers, the stopped Temporal server) after
its back-off, on the same database files and ports.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from devstack.processes import ManagedProcess, StackError, http_ok, port_open, stop_all, wait_until
from devstack.stack import LOOPBACK, SERVER_STOP_SECONDS, Stack, StackConfig
from devstack.tryton import DEFAULT_HOME as TRYTON_HOME

PORT_NAMES = ("temporal", "temporal_ui", "ingress", "salesforce", "kantata", "xero", "tryton", "tryton_proxy")
# Salesforce retries an unacknowledged outbound message with doubling delays up to two hours; a run that
# restarts Temporal under the ingress wants the retries to come back within seconds.
OUTBOUND_RETRY_MAX_SECONDS = 10
# How long the restarted Temporal server may take to answer again.
TEMPORAL_BACK_SECONDS = 90.0


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def pick_ports() -> dict[str, int]:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except OSError:
        low = 32768
    high = low if low > 21000 else 32768
    chosen: dict[str, int] = {}
    while len(chosen) < len(PORT_NAMES):
        port = random.randrange(20000, high)
        if port not in chosen.values() and _free(port):
            chosen[PORT_NAMES[len(chosen)]] = port
    return chosen


@dataclass
class Kill:
    worker: str
    pid: int
    workflow_id: str
    activity: str
    at: float


@dataclass
class Restart:
    at: float
    down_seconds: float


@dataclass
class ChaosWorld:
    stack: Stack
    proxy: ManagedProcess
    proxy_url: str
    say: Callable[[str], None]
    ports: dict[str, int] = field(default_factory=dict)
    kills: list[Kill] = field(default_factory=list)
    restarts: list[Restart] = field(default_factory=list)

    @property
    def config(self) -> StackConfig:
        return self.stack.config

    def vendor_urls(self) -> dict[str, str]:
        c = self.config
        return {
            "salesforce": c.url(c.salesforce_port),
            "kantata": c.url(c.kantata_port),
            "xero": c.url(c.xero_port),
            "tryton": self.proxy_url,
        }

    def workers(self) -> list[ManagedProcess]:
        return [p for p in self.stack.processes if p.name == "worker" or p.name.startswith("worker-")]

    def worker_of(self, pid: int) -> ManagedProcess | None:
        return next((w for w in self.workers() if w.pid == pid and w.alive()), None)

    def supervise(self) -> None:
        self.stack.supervise()
        if not self.proxy.alive():
            raise StackError(f"the Tryton fault proxy stopped. Last log lines:\n{self.proxy.tail()}")

    def kill_worker(self, worker: ManagedProcess, *, workflow_id: str, activity: str, at: float) -> None:
        assert worker.pid is not None
        pid = worker.pid
        os.kill(pid, signal.SIGKILL)
        self.kills.append(
            Kill(worker=worker.name, pid=pid, workflow_id=workflow_id, activity=activity, at=at)
        )
        self.say(f"chaos: SIGKILL {worker.name} (pid {pid}) while it ran {activity} for {workflow_id}")

    def stop_temporal(self) -> None:
        """Stop the server (SIGTERM, as a service manager would); the supervisor starts it again."""
        temporal = next(p for p in self.stack.processes if p.name == "temporal")
        self.say(f"chaos: stopping the Temporal server (pid {temporal.pid})")
        stop_all([temporal], timeout=SERVER_STOP_SECONDS)

    def temporal_answers(self) -> bool:
        c = self.config
        try:
            return port_open(LOOPBACK, c.temporal_port) and http_ok(c.url(c.temporal_ui_port))
        except (httpx.HTTPError, OSError):
            return False

    def stop(self) -> None:
        try:
            self.stack.stop()
        finally:
            stop_all([self.proxy], timeout=SERVER_STOP_SECONDS)


def start_world(data_dir: Path, *, workers: int, say: Callable[[str], None]) -> ChaosWorld:
    ports = pick_ports()
    proxy_url = f"http://{LOOPBACK}:{ports['tryton_proxy']}"
    config = StackConfig(
        data_dir=data_dir,
        temporal_port=ports["temporal"],
        temporal_ui_port=ports["temporal_ui"],
        ingress_port=ports["ingress"],
        salesforce_port=ports["salesforce"],
        kantata_port=ports["kantata"],
        xero_port=ports["xero"],
        tryton_port=ports["tryton"],
        workers=workers,
        # Where `make run` and the tests keep Tryton's install and template, unless moved.
        tryton_home=Path(os.environ.get("PSSYNC_TRYTON_HOME", TRYTON_HOME)),
        extra_env={
            # ps-sync reaches Tryton through the proxy; the people the run plays go straight to Tryton.
            "PSSYNC_TRYTON_URL": proxy_url,
            "PSSYNC_SANDBOX_SALESFORCE_OUTBOUND_RETRY_MAX_SECONDS": str(OUTBOUND_RETRY_MAX_SECONDS),
        },
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    proxy = ManagedProcess(
        name="tryton-proxy",
        argv=[
            sys.executable,
            "-m",
            "chaos.tryton_proxy",
            "--port",
            str(ports["tryton_proxy"]),
            "--upstream",
            config.url(config.tryton_port),
        ],
        env={},
        log_path=data_dir / "logs" / "tryton-proxy.log",
    )
    proxy.start()
    stack = Stack(config, progress=say)
    try:
        wait_until(
            lambda: http_ok(f"{proxy_url}/_sandbox/health"), proxy, timeout=30, what="/_sandbox/health"
        )
        say(f"{'Tryton fault proxy':<20} up  {proxy_url} -> {config.url(config.tryton_port)}")
        stack.start()
    except BaseException:
        # Also on a stop signal, which Stack.start leaves to its caller: nothing half-started stays up.
        stack.stop()
        stop_all([proxy], timeout=SERVER_STOP_SECONDS)
        raise
    return ChaosWorld(stack=stack, proxy=proxy, proxy_url=proxy_url, say=say, ports=ports)
