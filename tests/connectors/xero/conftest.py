"""The Xero sandbox served on a free loopback port, and XeroConnectors whose every request and response
is validated against specs/xero/xero_accounting.yaml."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest

from canonical import Account, Address, LegalEntity
from config import default_entities
from connectors.xero import XeroConnector
from sandboxes.faults import FaultConfig
from sandboxes.serve import ServedApp, serve_in_thread
from sandboxes.xero import RateLimitConfig, WebhookConfig, XeroSandbox, XeroSandboxConfig, create_app
from sandboxes.xero.control import XeroSandboxControl
from sandboxes.xero.seed import XeroFinanceUser

from ..specs import SpecValidatingTransport, ValidationLog

# Webhook retries on a test schedule (Xero's real one spans 24 hours).
TEST_WEBHOOKS = WebhookConfig(batch_window_ms=20, retry_delays_seconds=(0.05, 0.1, 0.2), timeout_seconds=2.0)


@dataclass
class XeroSandboxHandle:
    url: str
    served: ServedApp
    state: XeroSandbox
    config: XeroSandboxConfig


@pytest.fixture(scope="session")
def xero_sandbox() -> Iterator[XeroSandboxHandle]:
    config = XeroSandboxConfig(webhooks=TEST_WEBHOOKS)
    app = create_app(config)
    served = serve_in_thread(app)
    yield XeroSandboxHandle(url=served.url, served=served, state=app.state.sandbox, config=config)
    served.stop()


@pytest.fixture(scope="session")
def spec_log() -> ValidationLog:
    return ValidationLog()


@pytest.fixture
async def control(xero_sandbox: XeroSandboxHandle) -> AsyncIterator[XeroSandboxControl]:
    control = XeroSandboxControl(xero_sandbox.url)
    yield control
    # Whatever a test switched on is switched off again for the next one.
    await control.set_faults(FaultConfig())
    await control.set_rate_limits(RateLimitConfig())
    await control.set_webhooks(TEST_WEBHOOKS)
    await control.aclose()


def connector_for(
    sandbox: XeroSandboxHandle,
    log: ValidationLog,
    *,
    timeout: float = 10.0,
    max_concurrency: int = 5,
    tenant_id: str | None = None,
    client_secret: str | None = None,
) -> XeroConnector:
    http = httpx.AsyncClient(transport=SpecValidatingTransport(log=log), timeout=timeout)
    return XeroConnector(
        base_url=sandbox.url,
        identity_url=sandbox.url,
        client_id=sandbox.config.client_id,
        client_secret=client_secret or sandbox.config.client_secret,
        tenant_id=tenant_id or sandbox.config.tenant_id,
        max_concurrency=max_concurrency,
        http=http,
    )


@pytest.fixture
async def erp(xero_sandbox: XeroSandboxHandle, spec_log: ValidationLog) -> AsyncIterator[XeroConnector]:
    connector = connector_for(xero_sandbox, spec_log)
    yield connector
    await connector.aclose()


@pytest.fixture
async def finance(xero_sandbox: XeroSandboxHandle) -> AsyncIterator[XeroFinanceUser]:
    user = XeroFinanceUser(
        base_url=xero_sandbox.url,
        identity_url=xero_sandbox.url,
        client_id=xero_sandbox.config.client_id,
        client_secret=xero_sandbox.config.client_secret,
        tenant_id=xero_sandbox.config.tenant_id,
    )
    yield user
    await user.aclose()


@pytest.fixture
def entity() -> LegalEntity:
    return next(e for e in default_entities() if e.code == "UK")


@pytest.fixture
def seed_account() -> Account:
    suffix = uuid.uuid4().hex[:12].upper()
    return Account(
        id=f"001{suffix}",
        name=f"Fabrikam Ltd {suffix}",
        billing_address=Address(street="1 King Street", city="London", postal_code="EC2V 8AU", country="GB"),
        tax_number="GB123456789",
    )
