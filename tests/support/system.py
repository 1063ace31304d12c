"""ps-sync as the tests run it: the sandboxes (one set per test session, so vendor ids never repeat on the
shared Temporal servers; those that plug in, sandboxes/plugin.py, are found rather than named), and per test
an ingress, a ledger on SQLite, the real connectors and a worker on a task queue of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr
from temporalio.client import Client

from config import Settings
from devstack.tryton import TrytonServer
from ingress.app import create_app as create_ingress
from ledger.database import Database
from sandboxes.faults import FaultConfig
from sandboxes.kantata.app import create_app as create_kantata
from sandboxes.kantata.config import KantataSandboxConfig
from sandboxes.plugin import discover as discover_sandboxes
from sandboxes.salesforce.app import create_app as create_salesforce
from sandboxes.salesforce.config import SalesforceSandboxConfig
from sandboxes.serve import ServedApp, free_port, serve_in_thread
from sandboxes.xero import WebhookConfig, XeroSandboxConfig
from sandboxes.xero import create_app as create_xero
from worker import Connectors, build_connectors, build_worker

DEFAULTS = Settings()
# Webhook retries on a test schedule (the vendors' real schedules span hours).
TEST_WEBHOOKS = WebhookConfig(
    key=DEFAULTS.xero_webhook_key.get_secret_value(),
    batch_window_ms=20,
    retry_delays_seconds=(0.05, 0.2, 0.5),
)


@dataclass
class Sandboxes:
    salesforce: ServedApp
    kantata: ServedApp
    xero: ServedApp
    # The sandboxes that plug in, by vendor (the NetSuite sandbox among them).
    plugged: dict[str, ServedApp] = field(default_factory=dict)

    def settings_changes(self) -> dict[str, Any]:
        """The settings that point ps-sync at the plugged-in sandboxes."""
        changes: dict[str, Any] = {}
        for plugin in discover_sandboxes():
            if plugin.name in self.plugged:
                changes.update(plugin.settings_for(self.plugged[plugin.name].url))
        return changes

    def point_webhooks_at(self, ingress_url: str | None, settings: Settings) -> None:
        outbound = (
            f"{ingress_url}/webhooks/salesforce/outbound-messages?token={settings.salesforce_outbound_token.get_secret_value()}"
            if ingress_url
            else None
        )
        httpx.put(
            f"{self.salesforce.url}/_sandbox/outbound/endpoint", json={"url": outbound}
        ).raise_for_status()
        webhooks = TEST_WEBHOOKS.model_copy(
            update={
                "url": f"{ingress_url}/webhooks/xero" if ingress_url else None,
                "key": settings.xero_webhook_key.get_secret_value(),
            }
        )
        httpx.put(f"{self.xero.url}/_sandbox/webhooks", json=webhooks.model_dump()).raise_for_status()

    def calm(self) -> None:
        """Faults off, so one test's injected trouble never leaks into the next."""
        for served in (self.salesforce, self.kantata, self.xero, *self.plugged.values()):
            httpx.put(f"{served.url}/_sandbox/faults", json={}).raise_for_status()


async def set_faults(sandbox_url: str, faults: FaultConfig) -> None:
    """Switch a sandbox's injected faults while a test runs (FaultConfig() switches them off)."""
    async with httpx.AsyncClient() as http:
        (await http.put(f"{sandbox_url}/_sandbox/faults", json=faults.model_dump())).raise_for_status()


@contextmanager
def serving_sandboxes() -> Iterator[Sandboxes]:
    started: list[ServedApp] = []
    try:
        for app in (
            create_salesforce(
                SalesforceSandboxConfig(
                    org_id=DEFAULTS.salesforce_org_id,
                    outbound_retry_base_seconds=0.05,
                    outbound_retry_max_seconds=0.5,
                    outbound_poll_seconds=0.02,
                )
            ),
            create_kantata(KantataSandboxConfig()),
            create_xero(XeroSandboxConfig(tenant_id=DEFAULTS.xero_tenant_id, webhooks=TEST_WEBHOOKS)),
        ):
            started.append(serve_in_thread(app))
        plugged: dict[str, ServedApp] = {}
        for plugin in discover_sandboxes():
            plugged[plugin.name] = serve_in_thread(plugin.app_for(DEFAULTS))
            started.append(plugged[plugin.name])
        salesforce, kantata, xero = started[:3]
        yield Sandboxes(salesforce=salesforce, kantata=kantata, xero=xero, plugged=plugged)
    finally:
        for served in started:
            served.stop()


@dataclass
class System:
    settings: Settings
    client: Client
    database: Database
    connectors: Connectors
    sandboxes: Sandboxes
    ingress: ServedApp | None

    @property
    def task_queue(self) -> str:
        return self.settings.task_queue


@asynccontextmanager
async def running_system(
    client: Client,
    tmp_path: Path,
    sandboxes: Sandboxes,
    *,
    temporal_target: str | None = None,
    tryton: TrytonServer | None = None,
    task_queue: str | None = None,
    settings_changes: Mapping[str, Any] | None = None,
) -> AsyncIterator[System]:
    """Start a worker (and, given `temporal_target`, an ingress that connects to Temporal by itself)."""
    ingress_port = free_port()
    ingress_url = f"http://127.0.0.1:{ingress_port}"
    settings = DEFAULTS.model_copy(
        update={
            "environment": "test",
            # A given task queue lets a test stop its worker and start another on the same queue (downtime).
            "task_queue": task_queue or f"pssync-test-{uuid.uuid4().hex[:10]}",
            "database_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            "salesforce_base_url": sandboxes.salesforce.url,
            "kantata_base_url": sandboxes.kantata.url,
            "xero_base_url": sandboxes.xero.url,
            "xero_identity_url": sandboxes.xero.url,
            "ingress_public_url": ingress_url,
            "ingress_port": ingress_port,
            **sandboxes.settings_changes(),
            **(
                {
                    "tryton_url": tryton.url,
                    "tryton_database": tryton.database,
                    "tryton_user": tryton.user,
                    "tryton_password": SecretStr(tryton.password),
                }
                if tryton
                else {}
            ),
            # E.g. a legal entity configured with a tax code its ERP does not have yet.
            **(settings_changes or {}),
        }
    )
    async with AsyncExitStack() as stack:
        ingress = None
        if temporal_target:
            ingress = serve_in_thread(
                create_ingress(settings.model_copy(update={"temporal_address": temporal_target})),
                port=ingress_port,
            )
            stack.callback(ingress.stop)
            sandboxes.point_webhooks_at(ingress_url, settings)
            stack.callback(sandboxes.point_webhooks_at, None, settings)
        stack.callback(sandboxes.calm)
        database = Database.from_url(settings.database_url)
        database.migrate()
        stack.callback(database.dispose)
        connectors = build_connectors(settings)
        stack.push_async_callback(connectors.aclose)
        executor = stack.enter_context(ThreadPoolExecutor(max_workers=8, thread_name_prefix="activity"))
        worker = build_worker(
            client, settings=settings, connectors=connectors, database=database, executor=executor
        )
        await stack.enter_async_context(worker)
        yield System(
            settings=settings,
            client=client,
            database=database,
            connectors=connectors,
            sandboxes=sandboxes,
            ingress=ingress,
        )
