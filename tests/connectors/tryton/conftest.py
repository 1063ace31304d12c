"""A real Tryton 8.2 server for the whole test session, started from the template database.

On a machine without `.data/tryton` (CI), the first run installs Tryton into its own venv and builds the
template (about 45 s); every later run only copies the template and starts the server (about 2 s).
`PSSYNC_TRYTON_HOME` moves that folder.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from pssync.canonical import Account, Address, LegalEntity
from pssync.connectors.tryton.connector import TrytonConnector
from pssync.devstack.tryton import DEFAULT_HOME, TrytonServer, free_port
from pssync.settings import default_entities

_TIMINGS: dict[str, float] = {}
_TEST_SECONDS: list[float] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "connectors/tryton/" in report.nodeid:
        _TEST_SECONDS.append(report.duration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _TIMINGS.items())
        terminalreporter.write_line(f"tryton set-up: {spent}")
    if _TEST_SECONDS:
        mean = sum(_TEST_SECONDS) / len(_TEST_SECONDS)
        terminalreporter.write_line(
            f"tryton tests: {len(_TEST_SECONDS)}, {mean:.2f} s per test on average, "
            f"slowest {max(_TEST_SECONDS):.2f} s"
        )


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonServer]:
    home = Path(os.environ.get("PSSYNC_TRYTON_HOME", DEFAULT_HOME))
    server = TrytonServer(
        data_dir=tmp_path_factory.mktemp("tryton"), port=free_port(), home=home, fresh=True, timings=_TIMINGS
    )
    started = time.perf_counter()
    server.start()
    _TIMINGS["session total"] = round(time.perf_counter() - started, 2)
    try:
        yield server
    finally:
        server.stop()


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
