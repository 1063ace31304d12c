"""`make run` restarts a process of the stack that dies, and still stops everything when told to.

The end-to-end case starts the stack (without Tryton or the story) the way tests/e2e/test_stack_stops.py
does, kills its processes one by one and watches each come back while the rest keeps answering, then
stops it during a back-off. The other cases drive the supervisor directly on throwaway processes, to pin
the back-off and the crash-loop limit without waiting for them in real time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from config import Settings
from devstack import processes
from devstack.processes import EventLog, ManagedProcess, RestartPolicy, StopSignals, Supervisor, stop_all
from tests.e2e import test_stack_stops as stops

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# The fixture of the stop tests, under this module's name for it: it starts the stack as a background job
# with its own data directory, free ports and an environment marker, and kills whatever is left afterwards.
stack_job = stops.start

# The first restart waits 1 s; the rest is the worker's or the ingress's own start-up.
BACK_SECONDS = 30.0


def _pid_of(running: stops.Started, needle: str) -> int | None:
    found = [pid for pid, cmdline in stops._marked(running.marker).items() if needle in cmdline]
    # A restart spawns a fresh process, so two can only be seen in the instant the old one is reaped.
    return max(found) if found else None


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def _polling_identities(temporal_port: int) -> set[str]:
    settings = Settings()

    async def describe() -> set[str]:
        client = await Client.connect(f"127.0.0.1:{temporal_port}", namespace=settings.temporal_namespace)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=settings.temporal_namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return {poller.identity for poller in response.pollers}

    try:
        return asyncio.run(asyncio.wait_for(describe(), 5))
    except Exception:  # not answering yet, which the caller waits out
        return set()


def _polls(running: stops.Started, pid: int) -> bool:
    # The SDK's default identity, which the worker keeps: "<pid>@<host>".
    port = running.ports["PSSYNC_TEMPORAL_PORT"]
    return any(identity.startswith(f"{pid}@") for identity in _polling_identities(port))


def _events(running: stops.Started) -> list[dict[str, object]]:
    # The fixture puts the stack's data directory beside its output.
    log = running.log.parent / "data" / "logs" / "supervisor.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _comes_back(running: stops.Started, needle: str, old: int, *, seconds: float = BACK_SECONDS) -> int:
    new: int | None = None

    def replaced() -> bool:
        nonlocal new
        new = _pid_of(running, needle)
        return new is not None and new != old

    assert stops._wait_for(replaced, seconds), f"no new {needle!r} process:\n{running.output()}"
    assert new is not None
    return new


def _still_serving(running: stops.Started) -> None:
    assert stops._alive(running.pid), f"the stack exited:\n{running.output()}"
    assert not stops._free(running.ports["PSSYNC_TEMPORAL_PORT"]), "Temporal stopped listening"
    for name in ("PSSYNC_SALESFORCE_PORT", "PSSYNC_KANTATA_PORT", "PSSYNC_XERO_PORT"):
        assert _answers(f"http://127.0.0.1:{running.ports[name]}/_sandbox/health"), f"{name} stopped"


def test_a_killed_worker_ingress_or_temporal_is_restarted_and_sigint_still_stops_everything(
    stack_job: stops.StartStack,
) -> None:
    began = time.monotonic()
    running = stack_job(stops._devstack("--no-story"))
    running.wait_healthy()
    # Until then a process that dies is a failed start, which stops the stack by design.
    assert stops._wait_for(lambda: "ps-sync is running" in running.output(), 30), running.output()
    healthz = f"http://127.0.0.1:{running.ports['PSSYNC_INGRESS_PORT']}/healthz"
    seen = running.children()
    worker = _pid_of(running, "-m worker")
    ingress = _pid_of(running, "-m ingress")
    temporal = _pid_of(running, "start-dev")
    assert worker and ingress and temporal, stops._marked(running.marker)

    # The worker: restarted after its back-off, while everything else keeps answering.
    os.kill(worker, signal.SIGKILL)
    new_worker = _comes_back(running, "-m worker", worker)
    _still_serving(running)
    assert _answers(healthz)
    assert stops._wait_for(lambda: _polls(running, new_worker), BACK_SECONDS), (
        f"the new worker {new_worker} does not poll its task queue:\n{running.output()}"
    )
    exited = [e for e in _events(running) if e["event"] == "process_exited" and e["process"] == "worker"]
    assert exited and exited[0]["returncode"] == -signal.SIGKILL, _events(running)
    assert (exited[0]["attempt"], exited[0]["delay_s"]) == (1, 1.0)
    assert "worker               killed by SIGKILL" in running.output()

    # The ingress: back answering /healthz on the same port.
    os.kill(ingress, signal.SIGKILL)
    _comes_back(running, "-m ingress", ingress)
    assert stops._wait_for(lambda: _answers(healthz), BACK_SECONDS), running.output()
    _still_serving(running)
    assert stops._wait_for(lambda: "ingress              back up" in running.output(), 5), running.output()

    # Temporal: restarted on the same SQLite file; the ingress's /healthz asks Temporal, and a worker polls
    # the new server (the same one, or a restarted one if it gave up on the old connection).
    os.kill(temporal, signal.SIGKILL)
    _comes_back(running, "start-dev", temporal)
    assert stops._wait_for(lambda: _answers(healthz), BACK_SECONDS), running.output()

    def a_worker_polls() -> bool:
        pid = _pid_of(running, "-m worker")
        return pid is not None and _polls(running, pid)

    assert stops._wait_for(a_worker_polls, BACK_SECONDS), running.output()

    # A second crash within the minute doubles the back-off; a SIGINT during it stops everything at once.
    last_worker = _pid_of(running, "-m worker")
    assert last_worker is not None
    seen |= running.children()
    os.kill(last_worker, signal.SIGKILL)

    def backing_off() -> list[dict[str, object]]:
        return [e for e in _events(running) if e["event"] == "process_exited" and e["pid"] == last_worker]

    assert stops._wait_for(backing_off, 5), running.output()
    # Two, unless the worker also lost its connection when Temporal went away and was restarted then.
    (exit_event,) = backing_off()
    assert isinstance(exit_event["attempt"], int) and exit_event["attempt"] >= 2, exit_event
    assert exit_event["delay_s"] == 2.0 ** (exit_event["attempt"] - 1), exit_event
    seen |= running.children()
    stopping = time.monotonic()
    os.kill(running.pid, signal.SIGINT)

    stops._assert_everything_stopped(running, seen, expect_rc=0)
    assert "Stopping on SIGINT" in running.output()
    assert time.monotonic() - stopping < 20, running.output()
    # Neither restarted after its back-off nor logged as a crash while the stack stopped it.
    assert _events(running)[-1] == exit_event, _events(running)[-3:]
    assert time.monotonic() - began < 90


# -- the supervisor alone -------------------------------------------------------------------------------


@pytest.fixture
def signals(monkeypatch: pytest.MonkeyPatch) -> StopSignals:
    # Another test of this session may have begun a stop on the process-wide instance.
    fresh = StopSignals()
    monkeypatch.setattr(processes, "stop_signals", fresh)
    return fresh


def _process(tmp_path: Path, name: str, script: str) -> ManagedProcess:
    process = ManagedProcess(name, ["sh", "-c", script], {}, tmp_path / f"{name}.log")
    process.start()
    return process


def _tick_until(supervisor: Supervisor, done: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        supervisor.tick()
        if done():
            return True
        time.sleep(0.01)
    return done()


def test_back_off_doubles_up_to_its_cap_and_a_crash_loop_gives_up_on_that_process_only(
    tmp_path: Path, signals: StopSignals
) -> None:
    said: list[str] = []
    events = EventLog(tmp_path / "supervisor.log", "devstack.supervisor")
    policy = RestartPolicy(first_delay=0.05, max_delay=0.2, stable_after=60, max_restarts=4, window=60)
    supervisor = Supervisor(policy, say=said.append, events=events)
    crashing = _process(tmp_path, "crashing", "echo crashing; exit 3")
    steady = _process(tmp_path, "steady", "sleep 30")
    supervisor.watch(crashing)
    supervisor.watch(steady)
    try:
        assert _tick_until(supervisor, lambda: supervisor.gave_up() == ["crashing"], 10), said
        assert steady.alive()
        records = [json.loads(line) for line in events.path.read_text().splitlines()]
        exits = [r for r in records if r["event"] == "process_exited"]
        assert [(r["attempt"], r["delay_s"], r["returncode"]) for r in exits] == [
            (1, 0.05, 3),
            (2, 0.1, 3),
            (3, 0.2, 3),
            (4, 0.2, 3),
        ]
        assert [r["event"] for r in records].count("process_restarted") == 4
        assert records[-1]["event"] == "process_gave_up" and records[-1]["level"] == "error"
        assert "crash loop, giving up on it" in said[-1] and "crashing" in said[-1]
        assert crashing.log_path.read_text().count("--- devstack: restart") == 4
        # Given up means left alone: no more restarts however often it is ticked.
        pid = crashing.pid
        _tick_until(supervisor, lambda: False, 0.5)
        assert crashing.pid == pid
    finally:
        supervisor.close()
        stop_all([crashing, steady], timeout=2)


def test_a_process_that_stayed_up_starts_the_back_off_afresh(tmp_path: Path, signals: StopSignals) -> None:
    now = [0.0]
    events = EventLog(tmp_path / "supervisor.log", "devstack.supervisor")
    policy = RestartPolicy(first_delay=1, max_delay=30, stable_after=60, max_restarts=8, window=600)
    supervisor = Supervisor(policy, say=lambda _: None, events=events, clock=lambda: now[0])
    process = _process(tmp_path, "flaky", "exit 1")
    supervisor.watch(process)
    try:
        delays: list[object] = []
        for stayed_up in (5.0, 5.0, 5.0, 61.0, 5.0):
            now[0] += stayed_up
            assert _tick_until(supervisor, lambda: not process.alive(), 5)
            supervisor.tick()  # sees the exit, schedules the restart
            records = [json.loads(line) for line in events.path.read_text().splitlines()]
            delays.append(records[-1]["delay_s"])
            now[0] += 30
            supervisor.tick()  # restarts it
        assert delays == [1.0, 2.0, 4.0, 1.0, 2.0]
    finally:
        supervisor.close()
        stop_all([process], timeout=2)


def test_nothing_is_restarted_once_a_stop_was_asked_for(tmp_path: Path, signals: StopSignals) -> None:
    events = EventLog(tmp_path / "supervisor.log", "devstack.supervisor")
    supervisor = Supervisor(RestartPolicy(first_delay=0.01), say=lambda _: None, events=events)
    process = _process(tmp_path, "dies", "exit 1")
    supervisor.watch(process)
    try:
        assert _tick_until(supervisor, lambda: not process.alive(), 5)
        supervisor.tick()
        pid = process.pid
        signals.received = signal.SIGINT  # as the handler records it, before the stack starts stopping
        time.sleep(0.05)
        supervisor.tick()
        assert process.pid == pid
    finally:
        supervisor.close()
        stop_all([process], timeout=2)
