"""Session-wide real servers: a Temporal dev server, the time-skipping test server and Tryton.

Each starts only when a test asks for it, binds to 127.0.0.1 on a free port, and is stopped at the end.
On a machine without `.data/tryton` (CI), the first Tryton test installs Tryton into its own venv and
builds the template database (about 45 s); later runs only copy the template (about 2 s).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.tryton import DEFAULT_HOME, TrytonServer, ensure_template, free_port

from .support.system import Sandboxes, serving_sandboxes
from .support.temporal import start_dev_server, start_time_skipping


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def sandboxes() -> Iterator[Sandboxes]:
    with serving_sandboxes() as running:
        yield running


@pytest.fixture(scope="session")
async def ts_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_time_skipping()
    try:
        yield env
    finally:
        await env.shutdown()


_TIMINGS: dict[str, float] = {}
_TEST_SECONDS: list[float] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and "connectors/tryton/" in report.nodeid:
        _TEST_SECONDS.append(report.duration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _TIMINGS:
        spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in _TIMINGS.items())
        total = sum(_TIMINGS.values())
        terminalreporter.write_line(f"tryton set-up: {spent}; {total:.1f} s in this session")
    if _TEST_SECONDS:
        mean = sum(_TEST_SECONDS) / len(_TEST_SECONDS)
        terminalreporter.write_line(
            f"tryton tests: {len(_TEST_SECONDS)}, {mean:.2f} s per test on average, "
            f"slowest {max(_TEST_SECONDS):.2f} s"
        )


@pytest.fixture(scope="session")
def tryton_home() -> Path:
    """Tryton installed and its template database built, once per machine (kept under .data/tryton): the
    first user in a session pays for it here, where the set-up time is measured and reported."""
    home = Path(os.environ.get("PSSYNC_TRYTON_HOME", DEFAULT_HOME))
    ensure_template(home, timings=_TIMINGS)
    return home


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory, tryton_home: Path) -> Iterator[TrytonServer]:
    home = tryton_home
    server = TrytonServer(
        data_dir=tmp_path_factory.mktemp("tryton"), port=free_port(), home=home, fresh=True, timings=_TIMINGS
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
