"""Session-wide real servers: a Temporal dev server, the time-skipping test server and Tryton.

Each starts only when a test asks for it, binds to 127.0.0.1 on a free port, and is stopped at the end.
On a machine without `.data/tryton` (CI), the first Tryton test installs Tryton into its own venv and
builds the template database (about 45 s); later runs only copy the template (about 2 s).

Under pytest-xdist (`make test`) each worker process is a session of its own and starts its own servers;
only the install and the template are shared, built by one of them under a file lock (devstack.tryton).
tests/support/parallel.py keeps tests that share a narrower fixture on one worker and carries the workers'
Tryton timings to the closing summary.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from devstack.tryton import DEFAULT_HOME, TrytonServer, ensure_template, free_port

from .support.parallel import (
    GROUPS_FILE,
    GroupsFile,
    LineRelay,
    group_scheduler,
    is_worker,
    longest_first,
    merge_timings,
    worker_output,
    write_groups,
)
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
# The Tryton timings of each finished xdist worker, as the controller receives them.
_WORKER_TIMINGS: list[dict[str, float]] = []
_GROUPS = GroupsFile()
_RELAY = LineRelay()
# What tests wrote to the terminal on each finished xdist worker, as the controller receives it.
_WORKER_LINES: list[str] = []


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[GROUPS_FILE] = str(_GROUPS.path)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    return group_scheduler(config, log, _GROUPS) if config.getvalue("dist") == "loadgroup" else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if is_worker(config):
        longest_first(items)
        write_groups(config, items)


@pytest.hookimpl(trylast=True)  # after the terminal reporter exists
def pytest_configure(config: pytest.Config) -> None:
    if is_worker(config):
        _RELAY.install(config)


def pytest_runtest_logstart() -> None:
    _RELAY.running = True


def pytest_runtest_logfinish() -> None:
    _RELAY.running = False


def pytest_unconfigure(config: pytest.Config) -> None:
    _GROUPS.remove()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Under xdist the controller hears every worker's reports, so this counts the whole run there.
    if report.when == "call" and "connectors/tryton/" in report.nodeid:
        _TEST_SECONDS.append(report.duration)


def pytest_sessionfinish(session: pytest.Session) -> None:
    output = worker_output(session.config)
    if output is not None:
        output["tryton_timings"] = dict(_TIMINGS)
        output["relayed_lines"] = list(_RELAY.lines)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    timings = getattr(node, "workeroutput", {}).get("tryton_timings")
    if timings:
        _WORKER_TIMINGS.append(timings)
    _WORKER_LINES.extend(getattr(node, "workeroutput", {}).get("relayed_lines", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    if is_worker(config):
        return
    for line in _WORKER_LINES:
        terminalreporter.write_line(line)
    timings, workers = merge_timings([_TIMINGS, *_WORKER_TIMINGS])
    if timings:
        spent = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items())
        total = sum(timings.values())
        over = f" (summed over {workers} workers)" if _WORKER_TIMINGS else ""
        terminalreporter.write_line(f"tryton set-up: {spent}; {total:.1f} s in this session{over}")
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
