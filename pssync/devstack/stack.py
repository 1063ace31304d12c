"""The whole ps-sync system on one machine: Temporal dev server, sandboxes, Tryton, worker, ingress.

`make run`, `make demo`, `make bench` and the end-to-end tests all start it through here, so they
exercise the same topology. Every port can be overridden by environment (see StackConfig.from_env).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from pssync.devstack.processes import ManagedProcess, StackError, http_ok, port_open, wait_until
from pssync.settings import Settings
from pssync.workflows.search_attributes import ALL as SEARCH_ATTRIBUTES

log = structlog.get_logger("pssync.devstack")

LOOPBACK = "127.0.0.1"


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
    # The benchmark's direct-script baseline runs against a second set of vendors only (no Temporal, no app).
    with_temporal: bool = True
    with_app: bool = True
    # Sandbox rate limits are off unless a run (the governed benchmark) switches them on.
    xero_rate_limits: bool = False
    # Billing waits this long after the last approval before it bills a closed period.
    billing_settle_seconds: int = 3
    psa_poll_interval_seconds: float = 1.0
    payment_poll_interval_seconds: float = 2.0
    invoice_poll_interval_seconds: int = 20
    extra_env: dict[str, str] = field(default_factory=dict)

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
                "kantata_poll_interval_seconds": self.psa_poll_interval_seconds,
                "payment_poll_interval_seconds": self.payment_poll_interval_seconds,
            }
        )

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
            "PSSYNC_KANTATA_POLL_INTERVAL_SECONDS": str(self.psa_poll_interval_seconds),
        }
        return {**env, **self.extra_env}


class Stack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.settings = config.settings()
        self.processes: list[ManagedProcess] = []
        self._logs = config.data_dir / "logs"

    def _process(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> ManagedProcess:
        process = ManagedProcess(
            name=name,
            argv=argv,
            env={**self.config.app_env(), **(env or {})},
            log_path=self._logs / f"{name}.log",
        )
        self._check_port_free(name)
        process.start()
        self.processes.append(process)
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
        process = self._process("temporal", argv)
        wait_until(
            lambda: port_open(LOOPBACK, c.temporal_port) and http_ok(c.url(c.temporal_ui_port)),
            process,
            timeout=60,
            what="gRPC and UI ports",
        )

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
                        f"?token={settings.salesforce_outbound_token}"
                    ),
                    "PSSYNC_SANDBOX_SALESFORCE_ORG_ID": settings.salesforce_org_id,
                },
            ),
            "kantata": (c.kantata_port, {}),
            "xero": (
                c.xero_port,
                {
                    "PSSYNC_SANDBOX_XERO_WEBHOOKS__URL": f"{ingress}/webhooks/xero",
                    "PSSYNC_SANDBOX_XERO_WEBHOOKS__KEY": settings.xero_webhook_key,
                    "PSSYNC_SANDBOX_XERO_TENANT_ID": settings.xero_tenant_id,
                    "PSSYNC_SANDBOX_XERO_RATE_LIMITS__ENABLED": "true" if c.xero_rate_limits else "false",
                },
            ),
        }
        started: list[tuple[ManagedProcess, int]] = []
        for vendor, (port, extra) in specs.items():
            prefix = f"PSSYNC_SANDBOX_{vendor.upper()}_"
            env = {
                prefix + "HOST": LOOPBACK,
                prefix + "PORT": str(port),
                prefix + "STATE_PATH": str(sandbox_dir / f"{vendor}.sqlite"),
                **extra,
            }
            started.append(
                (self._process(vendor, [sys.executable, "-m", f"pssync.sandbox.{vendor}"], env), port)
            )
        for process, port in started:
            health = f"{c.url(port)}/_sandbox/health"
            wait_until(
                lambda: http_ok(health),  # noqa: B023 - awaited before the loop moves on
                process,
                timeout=30,
                what="/_sandbox/health",
            )

    def _start_tryton(self) -> None:
        c = self.config
        process = self._process(
            "tryton",
            [
                sys.executable,
                "-m",
                "pssync.devstack.tryton",
                "serve",
                "--port",
                str(c.tryton_port),
                "--data",
                str(c.data_dir / "tryton"),
            ],
        )
        # The first run installs and initialises Tryton (about a minute); later runs reuse it.
        wait_until(lambda: port_open(LOOPBACK, c.tryton_port), process, timeout=600, what="JSON-RPC port")

    def _start_app(self) -> None:
        c = self.config
        self._process("worker", [sys.executable, "-m", "pssync.worker"])
        ingress = self._process("ingress", [sys.executable, "-m", "pssync.ingress"])
        wait_until(lambda: http_ok(f"{c.url(c.ingress_port)}/healthz"), ingress, timeout=30, what="/healthz")

    def check_alive(self) -> None:
        for process in self.processes:
            if not process.alive():
                raise StackError(f"{process.name} stopped unexpectedly. Last log lines:\n{process.tail()}")

    def stop(self) -> None:
        # Reverse order: the app before the servers it talks to.
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def urls(self) -> dict[str, str]:
        c = self.config
        urls = {
            "Temporal Web UI": c.url(c.temporal_ui_port),
            "Temporal gRPC": f"{LOOPBACK}:{c.temporal_port}",
            "ps-sync ingress": c.url(c.ingress_port),
            "Salesforce sandbox": c.url(c.salesforce_port),
            "Kantata sandbox": c.url(c.kantata_port),
            "Xero sandbox": c.url(c.xero_port),
        }
        if c.with_tryton:
            urls["Tryton JSON-RPC"] = c.url(c.tryton_port)
        urls["logs"] = str(self._logs)
        return urls
