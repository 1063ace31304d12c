"""The NetSuite sandbox served on a free loopback port, and NetSuiteConnectors that reach it with either of
NetSuite's authentication schemes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from canonical import Account, Address, LegalEntity
from config import default_entities
from connectors.netsuite.connector import NetSuiteConnector
from connectors.netsuite.oauth2 import TOKEN_PATH, ClientCredentialsAuth
from connectors.netsuite.tba import TokenBasedAuth
from sandboxes.faults import FaultConfig
from sandboxes.netsuite import GovernanceConfig, NetSuiteSandbox, NetSuiteSandboxConfig, create_app
from sandboxes.netsuite.control import NetSuiteSandboxControl
from sandboxes.serve import ServedApp, serve_in_thread

CERTIFICATE_ID = "ps-sync-test-certificate"


@dataclass
class NetSuiteSandboxHandle:
    url: str
    served: ServedApp
    state: NetSuiteSandbox
    config: NetSuiteSandboxConfig


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    """The test's certificate key pair, made at test time: no private key lives in the repository."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture(scope="session")
def netsuite_sandbox(rsa_key: rsa.RSAPrivateKey) -> Iterator[NetSuiteSandboxHandle]:
    config = NetSuiteSandboxConfig(certificates={CERTIFICATE_ID: public_pem(rsa_key)})
    app = create_app(config)
    served = serve_in_thread(app)
    yield NetSuiteSandboxHandle(url=served.url, served=served, state=app.state.sandbox, config=config)
    served.stop()


@pytest.fixture
async def control(netsuite_sandbox: NetSuiteSandboxHandle) -> AsyncIterator[NetSuiteSandboxControl]:
    control = NetSuiteSandboxControl(netsuite_sandbox.url)
    yield control
    # Whatever a test switched on is switched off again for the next one.
    await control.set_faults(FaultConfig())
    await control.set_governance(GovernanceConfig())
    await control.map_certificate(CERTIFICATE_ID, public_pem_of(netsuite_sandbox))
    await control.aclose()


def public_pem_of(sandbox: NetSuiteSandboxHandle) -> str:
    return sandbox.config.certificates[CERTIFICATE_ID]


def tba_auth(sandbox: NetSuiteSandboxHandle, **changes: str) -> TokenBasedAuth:
    config = sandbox.config
    values = {
        "account_id": config.account_id,
        "consumer_key": config.consumer_key,
        "consumer_secret": config.consumer_secret,
        "token_id": config.token_id,
        "token_secret": config.token_secret,
        **changes,
    }
    return TokenBasedAuth(**values)


def oauth2_auth(
    sandbox: NetSuiteSandboxHandle,
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    *,
    certificate_id: str = CERTIFICATE_ID,
    client_id: str | None = None,
) -> ClientCredentialsAuth:
    return ClientCredentialsAuth(
        token_url=sandbox.url + TOKEN_PATH,
        client_id=client_id or sandbox.config.client_id,
        certificate_id=certificate_id,
        private_key=key,
        system="netsuite",
    )


def connector_for(
    sandbox: NetSuiteSandboxHandle, auth: TokenBasedAuth | ClientCredentialsAuth, **kwargs: int
) -> NetSuiteConnector:
    return NetSuiteConnector(base_url=sandbox.url, auth=auth, subsidiary_id="1", **kwargs)


@pytest.fixture(params=["tba", "oauth2"])
async def erp(
    request: pytest.FixtureRequest, netsuite_sandbox: NetSuiteSandboxHandle, rsa_key: rsa.RSAPrivateKey
) -> AsyncIterator[NetSuiteConnector]:
    """The connector under each of NetSuite's authentication schemes: the contract holds for both."""
    auth = tba_auth(netsuite_sandbox) if request.param == "tba" else oauth2_auth(netsuite_sandbox, rsa_key)
    connector = connector_for(netsuite_sandbox, auth)
    yield connector
    await connector.aclose()


@pytest.fixture
def entity() -> LegalEntity:
    return next(e for e in default_entities() if e.code == "US")


@pytest.fixture
def seed_account() -> Account:
    suffix = uuid.uuid4().hex[:12].upper()
    return Account(
        id=f"001{suffix}",
        name=f"Contoso Inc {suffix}",
        billing_address=Address(
            street="500 Market St", city="San Francisco", postal_code="94105", region="CA", country="US"
        ),
        tax_number="94-1234567",
    )
