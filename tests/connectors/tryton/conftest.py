"""The Tryton connector for the whole session, on the real Tryton server of tests/conftest.py.

On a machine without `.data/tryton` (CI), the first run installs Tryton into its own venv and builds the
template (about 45 s); every later run only copies the template and starts the server (about 2 s).
`PSSYNC_TRYTON_HOME` moves that folder.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from canonical import Account, Address, LegalEntity
from config import default_entities
from connectors.tryton.connector import TrytonConnector
from devstack.tryton import TrytonServer


@pytest.fixture(scope="session")
async def erp(tryton_server: TrytonServer) -> AsyncIterator[TrytonConnector]:
    # One connector (one Tryton session) for all tests, as a worker holds it: a login costs ~0.8 s of argon2.
    connector = TrytonConnector(
        url=tryton_server.url,
        database=tryton_server.database,
        user=tryton_server.user,
        password=tryton_server.password,
    )
    try:
        yield connector
    finally:
        await connector.aclose()


@pytest.fixture
def entity() -> LegalEntity:
    return next(e for e in default_entities() if e.code == "EU")


@pytest.fixture
def seed_account() -> Account:
    suffix = uuid.uuid4().hex[:10]
    return Account(
        id=f"001EU{suffix.upper()}",
        name=f"Contoso Holding {suffix} B.V.",
        billing_address=Address(
            street="Keizersgracht 1", city="Amsterdam", postal_code="1015 CJ", country="NL"
        ),
    )


class LoseReplyTransport(httpx.AsyncBaseTransport):
    """Delivers the request to the server, which commits it, then loses the reply: a client-side timeout."""

    def __init__(self, method: str) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._method = method
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if self.lost == 0 and json.loads(request.content).get("method") == self._method:
            await response.aread()
            await response.aclose()
            self.lost += 1
            raise httpx.ReadTimeout("reply lost after the server committed", request=request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
async def customer_id(erp: TrytonConnector, entity: LegalEntity, seed_account: Account) -> str:
    return await erp.create_customer(seed_account, entity=entity, idempotency_key=f"test:{uuid.uuid4()}")


@pytest.fixture
async def lossy_erp(
    tryton_server: TrytonServer, request: pytest.FixtureRequest
) -> AsyncIterator[TrytonConnector]:
    transport = LoseReplyTransport(request.param)
    client = httpx.AsyncClient(base_url=tryton_server.url, transport=transport)
    connector = TrytonConnector(
        url=tryton_server.url,
        database=tryton_server.database,
        user=tryton_server.user,
        password=tryton_server.password,
        http=client,
    )
    try:
        yield connector
    finally:
        await connector.aclose()
        await client.aclose()


# -- idempotency without a vendor key ------------------------------------------------------------------------
