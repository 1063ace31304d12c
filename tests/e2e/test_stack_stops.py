"""`make run` stops everything it started, however it was started and however it is stopped.

Each case starts the local stack (without Tryton, to stay quick) as a background job of a non-interactive
shell, the way a script does: such a job inherits SIGINT as ignored. It waits until the ingress answers,
stops the stack by a signal, and checks that the stack exited within a bound, that each of its ports is
free again, and that not one of the processes it started is still running. The processes are found by a
marker in their environment, which every child and grandchild inherits.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from sandboxes.plugin import discover as discover_sandboxes

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

REPO = Path(__file__).resolve().parents[2]
PORTS = (
    "PSSYNC_TEMPORAL_PORT",
    "PSSYNC_TEMPORAL_UI_PORT",
    "PSSYNC_INGRESS_PORT",
    "PSSYNC_SALESFORCE_PORT",
    "PSSYNC_KANTATA_PORT",
    "PSSYNC_XERO_PORT",
    "PSSYNC_TRYTON_PORT",
    # The sandboxes that plug in start too, each on its own port variable.
    *(plugin.port_variable for plugin in discover_sandboxes()),
)
MARKER = "PSSYNC_STOP_TEST_MARKER"
START_SECONDS = 90.0
# The stack's own bound (app 13 s, servers 8 s, then SIGKILL) with some room.
EXIT_SECONDS = 35.0


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # A port that only has connections in TIME_WAIT is free for a server, which sets SO_REUSEADDR.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports() -> dict[str, int]:
    """Free ports below the kernel's ephemeral range, where the Temporal dev server and other tests pick
    theirs, so nothing takes one between this choice and the stack binding it."""
    low, _ = (int(n) for n in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    high = low if low > 21000 else 32768
    chosen: dict[str, int] = {}
    while len(chosen) < len(PORTS):
        port = random.randrange(20000, high)
        if port not in chosen.values() and _free(port):
            chosen[PORTS[len(chosen)]] = port
    return chosen


def _marked(marker: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment carries the marker."""
    needle = f"{MARKER}={marker}".encode()
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or a zombie (whose environment reads empty anyway)
            continue
        found[int(entry.name)] = cmdline.strip()
    return found


def _wait_for(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def _ignores_sigint(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Started:
    shell: subprocess.Popen[bytes]
    pid: int  # of the background job: the devstack, or make
    ports: dict[str, int]
    marker: str
    log: Path
    rc_file: Path

    def children(self) -> set[int]:
        return set(_marked(self.marker)) - {self.shell.pid, self.pid}

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else "(no output)"

    def wait_healthy(self) -> None:
        url = f"http://127.0.0.1:{self.ports['PSSYNC_INGRESS_PORT']}/healthz"

        def healthy() -> bool:
            try:
                return httpx.get(url, timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        self._wait_starting(healthy, "the ingress to answer /healthz")

    def wait_temporal(self) -> None:
        port = self.ports["PSSYNC_TEMPORAL_PORT"]
        self._wait_starting(lambda: not _free(port), "the Temporal dev server to listen")

    def _wait_starting(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if not _alive(self.pid):
                pytest.fail(f"the stack exited while starting:\n{self.output()}")
            if ready():
                return
            time.sleep(0.2)
        pytest.fail(f"waited {START_SECONDS:.0f} s for {what}:\n{self.output()}")


StartStack = Callable[[str], Started]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[StartStack]:
    started: list[Started] = []

    def _start(command: str) -> Started:
        marker = uuid.uuid4().hex
        ports = _ports()
        log, pid_file, rc_file = tmp_path / "stack.log", tmp_path / "stack.pid", tmp_path / "stack.rc"
        env = {
            **os.environ,
            **{name: str(port) for name, port in ports.items()},
            "PSSYNC_DATA_DIR": str(tmp_path / "data"),
            "PSSYNC_WITH_TRYTON": "0",
            MARKER: marker,
        }
        # Job control is off in a non-interactive shell: the job starts with SIGINT and SIGQUIT ignored.
        script = f'{command} >"{log}" 2>&1 & echo $! >"{pid_file}"; wait $!; echo $? >"{rc_file}"'
        # Its own session, so a signal to the group reaches the script and its job and nothing else.
        shell = subprocess.Popen(["bash", "-c", script], cwd=REPO, env=env, start_new_session=True)
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10)
        running = Started(shell, int(pid_file.read_text()), ports, marker, log, rc_file)
        started.append(running)
        return running

    yield _start
    for running in started:
        for pid in _marked(running.marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if running.shell.poll() is None:
            running.shell.kill()
        running.shell.wait(10)


def _assert_everything_stopped(running: Started, seen: set[int], *, expect_rc: int | None) -> None:
    """`seen`: the stack's processes just before the signal, in case one loses its marker while it dies."""
    stopped = _wait_for(lambda: not _alive(running.pid), EXIT_SECONDS)
    assert stopped, f"still running {EXIT_SECONDS:.0f} s after the signal:\n{running.output()}"

    def left() -> dict[int, str]:
        return {**{pid: "?" for pid in seen if _alive(pid)}, **_marked(running.marker)}

    def busy() -> dict[str, int]:
        return {name: port for name, port in running.ports.items() if not _free(port)}

    # Gone with the stack, not merely orphaned; a process killed a moment ago may still be closing sockets.
    assert _wait_for(lambda: not left(), 5), f"left running: {left()}\n{running.output()}"
    assert _wait_for(lambda: not busy(), 5), f"ports still in use: {busy()}\n{running.output()}"
    running.shell.wait(10)
    if expect_rc is not None:
        assert running.rc_file.read_text().strip() == str(expect_rc), running.output()


def _devstack(*args: str) -> str:
    return " ".join([sys.executable, "-m", "devstack", "run", *args])


def test_sigint_to_the_devstack_in_a_background_job_stops_everything(start: StartStack) -> None:
    running = start(_devstack("--no-story"))
    running.wait_healthy()
    seen = running.children()
    assert len(seen) >= 6, f"expected Temporal, three sandboxes, worker and ingress: {seen}"

    os.kill(running.pid, signal.SIGINT)

    _assert_everything_stopped(running, seen, expect_rc=0)
    assert "Stopping on SIGINT" in running.output()


def test_sigkill_to_the_devstack_takes_its_children_with_it(start: StartStack) -> None:
    running = start(_devstack("--no-story"))
    running.wait_healthy()
    seen = running.children()
    assert len(seen) >= 6

    os.kill(running.pid, signal.SIGKILL)

    _assert_everything_stopped(running, seen, expect_rc=128 + signal.SIGKILL)


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
# `-o install`: the recipe as it is, without ever reinstalling the venv.
MAKE_RUN = "make --no-print-directory -o install run"


@needs_make
def test_ctrl_c_on_a_script_running_make_run_in_the_background_stops_everything(start: StartStack) -> None:
    # A Ctrl-C at the terminal signals the script's whole process group: the script, make and the stack,
    # the last two with SIGINT ignored. The recipe plays the story, so the signal also cuts that short.
    running = start(MAKE_RUN)
    running.wait_healthy()
    seen = running.children()
    assert _ignores_sigint(running.pid), "make should have inherited SIGINT as ignored, as in a script"

    os.killpg(running.shell.pid, signal.SIGINT)

    # The script itself may die of the SIGINT before it can tell make's status.
    _assert_everything_stopped(running, seen, expect_rc=None)
    assert "Stopping on SIGINT" in running.output()


@needs_make
def test_sigterm_to_make_while_the_stack_is_starting_stops_everything(start: StartStack) -> None:
    # make forwards SIGTERM to its recipe (a SIGINT sent to make alone it keeps to itself).
    running = start(MAKE_RUN)
    running.wait_temporal()
    seen = running.children()

    os.kill(running.pid, signal.SIGTERM)

    # make waits for the stack to stop, then dies of the SIGTERM in turn.
    _assert_everything_stopped(running, seen, expect_rc=128 + signal.SIGTERM)
    assert "Stopping on SIGTERM" in running.output()
