"""The whole ps-sync system on one machine: Temporal dev server, sandboxes, Tryton, worker, ingress.

`make run`, `make demo`, `make bench` and the end-to-end tests all start it through here, so they
exercise the same topology. Every port can be overridden by environment (see StackConfig.from_env).

Only `make run` calls `Stack.supervise()`, which restarts any process that exits (Temporal included: it
reopens its SQLite file) with an exponential back-off, and gives up on one that crash-loops while the rest
keeps running, so its UI and logs stay there to look at. The others fail fast through `check_alive()`.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config import Settings
from devstack.processes import (
    EventLog,
    ManagedProcess,
    RestartPolicy,
    StackError,
    StopRequested,
    http_ok,
    port_open,
    stop_all,
    stop_signals,
    wait_until,
)
from devstack.processes import Supervisor as ProcessSupervisor
from devstack.tryton import DEFAULT_HOME as TRYTON_HOME
from devstack.tryton import ensure_template
from runs.search_attributes import ALL as SEARCH_ATTRIBUTES
from sandboxes.plugin import SandboxPlugin
from sandboxes.plugin import discover as discover_sandboxes
from sandboxes.serve import free_port

LOOPBACK = "127.0.0.1"

# The worker may take its graceful shutdown (10 s) to finish running activities; the servers stop at once.
APP_STOP_SECONDS = 13.0
SERVER_STOP_SECONDS = 8.0
APP = ("worker", "ingress")


def worker_name(number: int) -> str:
    """The first worker is `worker`, as `make run` has always named it; more are `worker-2`, `worker-3`."""
    return "worker" if number == 1 else f"worker-{number}"


def _bin(name: str) -> str:
    """An executable installed beside this interpreter (the project's venv)."""
    candidate = Path(sys.executable).parent / name
    if not candidate.exists():
        raise StackError(f"{name} is not installed in {candidate.parent}; run `make install`")
    return str(candidate)


@dataclass
class StackConfig:
    data_dir: Path
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    ingress_port: int = 8700
    salesforce_port: int = 8701
    kantata_port: int = 8702
    xero_port: int = 8703
    tryton_port: int = 18000
    with_tryton: bool = True
    # The Tryton venv and template database, shared by every stack and test run on this checkout.
    tryton_home: Path = TRYTON_HOME
    # The benchmark's direct-script baseline runs against a second set of vendors only (no Temporal, no app).
    with_temporal: bool = True
    with_app: bool = True
    # Sandbox rate limits are off unless a run (the governed benchmark) switches them on.
    xero_rate_limits: bool = False
    # The minute budget the Xero sandbox reports (None: Xero's own 60). A benchmark's baseline world sets it
    # beyond Xero's limit, so ps-sync's client, like the direct script, is not paced there.
    xero_minute_limit: int | None = None
    # Billing waits this long after the last approval before it bills a closed period.
    billing_settle_seconds: int = 3
    psa_poll_interval_seconds: float = 1.0
    payment_poll_interval_seconds: float = 2.0
    invoice_poll_interval_seconds: int = 20
    # Worker processes polling the one task queue (the chaos run kills one while the other carries on).
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    # Ports of the sandboxes that plug in (sandboxes/plugin.py), by vendor. One not given gets a free port, so
    # stacks built in code (the benchmark's two, tests') never collide; `from_env` gives the well-known ones.
    sandbox_ports: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.plugins: list[SandboxPlugin] = discover_sandboxes()
        taken = set(self.sandbox_ports.values())
        for plugin in self.plugins:
            while plugin.name not in self.sandbox_ports:
                port = free_port()
                if port not in taken:
                    self.sandbox_ports[plugin.name] = port
                    taken.add(port)

    @classmethod
    def from_env(cls, data_dir: Path) -> StackConfig:
        def port(name: str, default: int) -> int:
            return int(os.environ.get(name, default))

        return cls(
            data_dir=data_dir,
            temporal_port=port("PSSYNC_TEMPORAL_PORT", 7233),
            temporal_ui_port=port("PSSYNC_TEMPORAL_UI_PORT", 8233),
            ingress_port=port("PSSYNC_INGRESS_PORT", 8700),
            salesforce_port=port("PSSYNC_SALESFORCE_PORT", 8701),
            kantata_port=port("PSSYNC_KANTATA_PORT", 8702),
            xero_port=port("PSSYNC_XERO_PORT", 8703),
            tryton_port=port("PSSYNC_TRYTON_PORT", 18000),
            with_tryton=os.environ.get("PSSYNC_WITH_TRYTON", "1") != "0",
            tryton_home=Path(os.environ.get("PSSYNC_TRYTON_HOME", TRYTON_HOME)),
            sandbox_ports={p.name: port(p.port_variable, p.default_port) for p in discover_sandboxes()},
        )

    def url(self, port: int) -> str:
        return f"http://{LOOPBACK}:{port}"

    def settings(self) -> Settings:
        """The settings every ps-sync process of this stack runs with."""
        base = Settings()
        return base.model_copy(
            update={
                "temporal_address": f"{LOOPBACK}:{self.temporal_port}",
                "temporal_ui_url": self.url(self.temporal_ui_port),
                "database_url": f"sqlite:///{self.data_dir / 'pssync.sqlite'}",
                "salesforce_base_url": self.url(self.salesforce_port),
                "kantata_base_url": self.url(self.kantata_port),
                "xero_base_url": self.url(self.xero_port),
                "xero_identity_url": self.url(self.xero_port),
                "tryton_url": self.url(self.tryton_port),
                "ingress_host": LOOPBACK,
                "ingress_port": self.ingress_port,
                "ingress_public_url": self.url(self.ingress_port),
                "psa_poll_interval_seconds": self.psa_poll_interval_seconds,
                "payment_poll_interval_seconds": self.payment_poll_interval_seconds,
                **self._plugin_settings(),
            }
        )

    def _plugin_settings(self) -> dict[str, object]:
        """The settings that point ps-sync at each plugged-in sandbox."""
        changes: dict[str, object] = {}
        for plugin in self.plugins:
            changes.update(plugin.settings_for(self.url(self.sandbox_ports[plugin.name])))
        return changes

    def app_env(self) -> dict[str, str]:
        settings = self.settings()
        env = {
            "PSSYNC_TEMPORAL_ADDRESS": settings.temporal_address,
            "PSSYNC_TEMPORAL_UI_URL": settings.temporal_ui_url,
            "PSSYNC_DATABASE_URL": settings.database_url,
            "PSSYNC_SALESFORCE_BASE_URL": settings.salesforce_base_url,
            "PSSYNC_KANTATA_BASE_URL": settings.kantata_base_url,
            "PSSYNC_XERO_BASE_URL": settings.xero_base_url,
            "PSSYNC_XERO_IDENTITY_URL": settings.xero_identity_url,
            "PSSYNC_TRYTON_URL": settings.tryton_url,
            "PSSYNC_INGRESS_HOST": LOOPBACK,
            "PSSYNC_INGRESS_PORT": str(self.ingress_port),
            "PSSYNC_INGRESS_PUBLIC_URL": settings.ingress_public_url,
            "PSSYNC_PSA_POLL_INTERVAL_SECONDS": str(self.psa_poll_interval_seconds),
            **{f"PSSYNC_{name.upper()}": str(value) for name, value in self._plugin_settings().items()},
        }
        return {**env, **self.extra_env}


class Stack:
    """`progress`, when given, hears a line as each service comes up (`make run` prints them)."""

    def __init__(
        self,
        config: StackConfig,
        *,
        progress: Callable[[str], None] | None = None,
        restart_policy: RestartPolicy | None = None,
    ) -> None:
        self.config = config
        self.settings = config.settings()
        self.processes: list[ManagedProcess] = []
        self._logs = config.data_dir / "logs"
        self._progress = progress
        # Only consulted by supervise(): a stack nobody supervises still fails fast through check_alive().
        self.supervisor = ProcessSupervisor(
            restart_policy or RestartPolicy(),
            say=self._say,
            events=EventLog(self._logs / "supervisor.log", logger="devstack.supervisor"),
        )

    def _say(self, message: str) -> None:
        if self._progress is not None:
            self._progress(message)

    def _up(self, what: str, started: float, where: str) -> None:
        self._say(f"{what:<20} up in {time.monotonic() - started:4.1f} s  {where}")

    def _process(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        ready: Callable[[], bool] | None = None,
        where: str = "",
    ) -> ManagedProcess:
        """`ready` and `where` tell the supervisor how to see a restarted process back up, and say where."""
        process = ManagedProcess(
            name=name,
            argv=argv,
            env={**self.config.app_env(), **(env or {})},
            log_path=self._logs / f"{name}.log",
        )
        self._check_port_free(name)
        # A stop signal between the spawn and the append would leave a child that stop() never sees.
        with stop_signals.deferred():
            process.start()
            self.processes.append(process)
        self.supervisor.watch(process, ready, where)
        return process

    def _check_port_free(self, name: str) -> None:
        for port in self._ports_of(name):
            if port_open(LOOPBACK, port):
                raise StackError(
                    f"port {port} for {name} is already in use; stop what uses it or override the port "
                    "(PSSYNC_*_PORT environment variables)"
                )

    def _ports_of(self, name: str) -> list[int]:
        c = self.config
        return {
            "temporal": [c.temporal_port, c.temporal_ui_port],
            "salesforce": [c.salesforce_port],
            "kantata": [c.kantata_port],
            "xero": [c.xero_port],
            "tryton": [c.tryton_port],
            "ingress": [c.ingress_port],
            **{plugin.name: [c.sandbox_ports[plugin.name]] for plugin in c.plugins},
        }.get(name, [])

    def start(self) -> None:
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            if self.config.with_temporal:
                self._start_temporal()
            self._start_sandboxes()
            if self.config.with_tryton:
                self._start_tryton()
            if self.config.with_app:
                self._start_app()
        except StopRequested:
            # Left to whoever installed the stop signals: it stops the stack anyway, and says why first.
            raise
        except BaseException:
            self.stop()
            raise

    def _start_temporal(self) -> None:
        c = self.config
        argv = [
            _bin("temporal"),
            "server",
            "start-dev",
            "--ip",
            LOOPBACK,
            "--port",
            str(c.temporal_port),
            "--ui-port",
            str(c.temporal_ui_port),
            "--db-filename",
            str(c.data_dir / "temporal.sqlite"),
            "--log-level",
            "warn",
            # The UI shows encrypted payloads through the ingress's codec server.
            "--ui-codec-endpoint",
            f"{c.url(c.ingress_port)}/codec",
            # Measured on this machine (design.md): WAL doubles throughput and stays durable; faster
            # processor polling cuts activity latency from ~300 ms to ~120 ms.
            "--sqlite-pragma",
            "journal_mode=WAL",
            "--sqlite-pragma",
            "synchronous=NORMAL",
            "--dynamic-config-value",
            "history.transferProcessorMaxPollRPS=1000",
            "--dynamic-config-value",
            "history.timerProcessorMaxPollRPS=1000",
            "--dynamic-config-value",
            "history.visibilityProcessorMaxPollRPS=1000",
        ]
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}=Keyword"]
        started = time.monotonic()

        def ready() -> bool:
            return port_open(LOOPBACK, c.temporal_port) and http_ok(c.url(c.temporal_ui_port))

        where = f"{LOOPBACK}:{c.temporal_port}"
        # A restart reopens the same SQLite file, which WAL keeps consistent through a crash, so workflows
        # carry on from their histories.
        process = self._process("temporal", argv, ready=ready, where=where)
        wait_until(
            ready,
            process,
            timeout=60,
            what="gRPC and UI ports",
        )
        self._up("Temporal dev server", started, where)

    def _start_sandboxes(self) -> None:
        c = self.config
        sandbox_dir = c.data_dir / "sandboxes"
        ingress = c.url(c.ingress_port)
        settings = self.settings
        specs = {
            "salesforce": (
                c.salesforce_port,
                {
                    "PSSYNC_SANDBOX_SALESFORCE_OUTBOUND_URL": (
                        f"{ingress}/webhooks/salesforce/outbound-messages"
                        f"?token={settings.salesforce_outbound_token.get_secret_value()}"
                    ),
                    "PSSYNC_SANDBOX_SALESFORCE_ORG_ID": settings.salesforce_org_id,
                },
            ),
            "kantata": (c.kantata_port, {}),
            "xero": (
                c.xero_port,
                {
                    "PSSYNC_SANDBOX_XERO_WEBHOOKS__URL": f"{ingress}/webhooks/xero",
                    "PSSYNC_SANDBOX_XERO_WEBHOOKS__KEY": settings.xero_webhook_key.get_secret_value(),
                    "PSSYNC_SANDBOX_XERO_TENANT_ID": settings.xero_tenant_id,
                    "PSSYNC_SANDBOX_XERO_RATE_LIMITS__ENABLED": "true" if c.xero_rate_limits else "false",
                    **(
                        {"PSSYNC_SANDBOX_XERO_RATE_LIMITS__PER_MINUTE": str(c.xero_minute_limit)}
                        if c.xero_minute_limit
                        else {}
                    ),
                },
            ),
        }
        for plugin in c.plugins:
            specs[plugin.name] = (c.sandbox_ports[plugin.name], plugin.environment_for(settings))
        began = time.monotonic()
        started: list[tuple[ManagedProcess, str]] = []
        for vendor, (port, extra) in specs.items():
            prefix = f"PSSYNC_SANDBOX_{vendor.upper()}_"
            env = {
                prefix + "HOST": LOOPBACK,
                prefix + "PORT": str(port),
                prefix + "STATE_PATH": str(sandbox_dir / f"{vendor}.sqlite"),
                **extra,
            }
            health = f"{c.url(port)}/_sandbox/health"
            process = self._process(
                vendor,
                [sys.executable, "-m", f"sandboxes.{vendor}"],
                env,
                ready=functools.partial(http_ok, health),
                where=c.url(port),
            )
            started.append((process, health))
        for process, health in started:
            wait_until(
                functools.partial(http_ok, health),
                process,
                timeout=30,
                what="/_sandbox/health",
            )
            title = next((p.title for p in c.plugins if p.name == process.name), process.name.capitalize())
            self._up(f"{title} sandbox", began, health.removesuffix("/_sandbox/health"))

    def _start_tryton(self) -> None:
        c = self.config
        started = time.monotonic()
        # Here rather than in the child: the first run installs Tryton and builds its template (30-40 s),
        # and this process can say so while it waits. Later runs find both and go straight on.
        try:
            ensure_template(c.tryton_home, progress=self._progress)
        except Exception as err:
            raise StackError(f"could not prepare Tryton under {c.tryton_home}: {err}") from err
        process = self._process(
            "tryton",
            [
                sys.executable,
                "-m",
                "devstack.tryton",
                "--home",
                str(c.tryton_home),
                "serve",
                "--port",
                str(c.tryton_port),
                "--data",
                str(c.data_dir / "tryton"),
            ],
            # Serves the persistent database it left behind, so a restart loses nothing.
            ready=functools.partial(port_open, LOOPBACK, c.tryton_port),
            where=c.url(c.tryton_port),
        )
        wait_until(lambda: port_open(LOOPBACK, c.tryton_port), process, timeout=120, what="JSON-RPC port")
        self._up("Tryton", started, c.url(c.tryton_port))

    def _start_app(self) -> None:
        c = self.config
        started = time.monotonic()
        healthz = f"{c.url(c.ingress_port)}/healthz"
        workers = [
            self._process(
                worker_name(number),
                [sys.executable, "-m", "worker"],
                where=f"task queue {self.settings.task_queue}",
            )
            for number in range(1, self.config.workers + 1)
        ]
        ingress = self._process(
            "ingress",
            [sys.executable, "-m", "ingress"],
            ready=functools.partial(http_ok, healthz),
            where=c.url(c.ingress_port),
        )
        wait_until(functools.partial(http_ok, healthz), ingress, timeout=30, what="/healthz")
        self._up("ps-sync ingress", started, c.url(c.ingress_port))
        # The worker has no port; by now it has had the ingress's start-up time to fail on an import.
        for worker in workers:
            if not worker.alive():
                raise StackError(f"{worker.name} exited while starting. Last log lines:\n{worker.tail()}")
            self._up(f"ps-sync {worker.name}", started, f"task queue {self.settings.task_queue}")

    def supervise(self) -> None:
        """Restart whatever exited, after its back-off; call it every fraction of a second. Never blocks for
        long and never raises StackError: a crash loop gives up on that one process and says so."""
        if self.processes:
            self.supervisor.tick()

    def check_alive(self) -> None:
        for process in self.processes:
            if not process.alive():
                raise StackError(f"{process.name} stopped unexpectedly. Last log lines:\n{process.tail()}")

    def stop(self) -> None:
        """Stop every process this stack started; safe to call again, and bounded in time (about 25 s at
        most, however the processes behave)."""
        # First, so that nothing is restarted while (or after) the rest stops.
        self.supervisor.close()
        processes, self.processes = self.processes, []
        if not processes:
            return
        stop_signals.begin_stop()
        started = time.monotonic()
        # The app before the servers it talks to, so it does not log a burst of connection errors.
        app = [p for p in processes if p.name in APP or p.name.startswith("worker-")]
        stop_all(app, timeout=APP_STOP_SECONDS)
        stop_all([p for p in processes if p not in app], timeout=SERVER_STOP_SECONDS)
        count = f"{len(processes)} process" + ("es" if len(processes) != 1 else "")
        self._say(f"stopped {count} in {time.monotonic() - started:.1f} s")

    def urls(self) -> dict[str, str]:
        c = self.config
        urls = {
            "Temporal Web UI": c.url(c.temporal_ui_port),
            "Temporal gRPC": f"{LOOPBACK}:{c.temporal_port}",
            "ps-sync ingress": c.url(c.ingress_port),
            "Salesforce sandbox": c.url(c.salesforce_port),
            "Kantata sandbox": c.url(c.kantata_port),
            "Xero sandbox": c.url(c.xero_port),
            **{f"{p.title} sandbox": c.url(c.sandbox_ports[p.name]) for p in c.plugins},
        }
        if c.with_tryton:
            urls["Tryton JSON-RPC"] = c.url(c.tryton_port)
        urls["logs"] = str(self._logs)
        return urls
