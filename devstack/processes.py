"""Start, watch, restart and stop the child processes of a local stack, each logging to its own file.

Stopping has to work however the stack was started. A background job of a non-interactive shell inherits
SIGINT as ignored, and Python then never raises KeyboardInterrupt; so `StopSignals` installs handlers of
its own. Each child runs in a process group of its own (a Ctrl-C at the terminal reaches only the stack,
which then stops the children in order) and, on Linux, is killed by the kernel if the stack itself is
killed hard, since nothing else would stop it then.

`Supervisor` restarts children that exit. It never sleeps and never restarts once a stop signal arrived,
so the stop path above stays the only way the stack winds down.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx


class StackError(RuntimeError):
    pass


class StopRequested(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP asked the stack to stop.

    A KeyboardInterrupt, so asyncio lets it out of the event loop at once instead of keeping it in
    whichever task happened to be running, and `except Exception` does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignals:
    """The stop signals, as one request to stop, raised as StopRequested in the main thread.

    The first signal raises unless a child is being spawned (the exception would lose track of it; it is
    raised once the child is registered). Once stopping has begun nothing raises any more, so a stop cannot
    be cut short; a further signal only tells it to stop waiting and kill what is left.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self.hurry = False
        self._stopping = False
        self._deferring = 0

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("signal handlers can only be installed from the main thread")
        # Installed whatever was inherited: a background job of a script starts with SIGINT ignored.
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._on_signal)
        # Ignored SIGHUP means `nohup`: the stack is meant to outlive its terminal then.
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
            signal.signal(signal.SIGHUP, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.received is None:
            self.received = signum
        if self._stopping:
            self.hurry = True
        elif not self._deferring:
            raise StopRequested(signum)

    @property
    def stopping(self) -> bool:
        return self._stopping

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
        if not self._deferring and not self._stopping and self.received is not None:
            raise StopRequested(self.received)

    def begin_stop(self) -> None:
        """From here on the process only winds down: signals hurry the stop instead of raising."""
        self._stopping = True


# One per process, like the signal handlers it stands for. Until install() it never raises, so the
# benchmark and the tests, which start stacks without it, stop as before.
stop_signals = StopSignals()


PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        _libc = None


def die_with_parent(signum: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A preexec_fn that makes the kernel send `signum` to the child when this process dies (Linux).

    None elsewhere, or off the main thread: the kernel ties the signal to the thread that forked, so a
    child spawned from a worker thread would die with that thread.
    """
    if _libc is None or threading.current_thread() is not threading.main_thread():
        return None
    libc = _libc
    parent = os.getpid()

    def preexec() -> None:
        # Runs in the child between fork and exec: only async-signal-safe work, nothing imported here.
        libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the prctl took effect
            os.kill(os.getpid(), signum)

    return preexec


@dataclass
class ManagedProcess:
    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # Own session, so a Ctrl-C at the terminal reaches the stack only (which stops the children in
            # order) and killing the group also stops what the child spawned.
            self.process = subprocess.Popen(
                self.argv,
                env={**os.environ, **self.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def signal_group(self, signum: int) -> None:
        # The group outlives its leader while anything the child spawned is still in it.
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 15.0) -> None:
        stop_all([self], timeout=timeout)


def stop_all(processes: Sequence[ManagedProcess], *, timeout: float) -> None:
    """SIGTERM to every process group, up to `timeout` seconds for them to exit, then SIGKILL.

    Idempotent (a process that has exited is only swept for leftovers), and bounded: at most `timeout`
    plus a few seconds, less when a second stop signal says not to wait.
    """
    started = [p for p in processes if p.process is not None]
    for process in started:
        if process.alive():
            process.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(p.alive() for p in started) and time.monotonic() < deadline and not stop_signals.hurry:
        time.sleep(0.05)
    # Also swept when the leader exited by itself: whatever it spawned may still be in its group.
    for process in started:
        process.signal_group(signal.SIGKILL)
    for process in started:
        assert process.process is not None
        try:
            process.process.wait(5)
        except subprocess.TimeoutExpired:
            pass


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(ready: Callable[[], bool], process: ManagedProcess, *, timeout: float, what: str) -> None:
    """Poll `ready()` until true; fail fast with the log tail if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process.alive():
            raise StackError(
                f"{process.name} exited while starting ({what}). Last log lines:\n{process.tail()}"
            )
        try:
            if ready():
                return
        except (httpx.HTTPError, OSError):
            pass
        time.sleep(0.2)
    raise StackError(
        f"{process.name} not ready after {timeout:.0f}s ({what}). Last log lines:\n{process.tail()}"
    )


def http_ok(url: str) -> bool:
    return httpx.get(url, timeout=2.0).status_code < 500


def describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential back-off between restarts, and when to stop trying."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    # A process that stayed up this long had recovered: its next crash starts the back-off afresh.
    stable_after: float = 60.0
    # More restarts than this within `window` seconds is a crash loop that restarting will not fix.
    max_restarts: int = 8
    window: float = 600.0

    def delay(self, attempt: int) -> float:
        return float(min(self.first_delay * 2 ** (attempt - 1), self.max_delay))


class EventLog:
    """One JSON object a line, shaped like the product's structlog output, so one tool reads both."""

    def __init__(self, path: Path, logger: str) -> None:
        self.path = path
        self.logger = logger
        self._file: IO[str] | None = None

    def write(self, event: str, level: str = "info", **fields: Any) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", buffering=1)
        record = {
            "event": event,
            "level": level,
            "logger": self.logger,
            "timestamp": datetime.now(UTC).isoformat(),
            **fields,
        }
        self._file.write(json.dumps(record, default=str) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class _Watched:
    process: ManagedProcess
    ready: Callable[[], bool] | None
    what: str
    started_at: float
    # Restarts since the process last stayed up for `stable_after`: the exponent of the back-off.
    attempt: int = 0
    restarts: deque[float] = field(default_factory=deque)
    restart_at: float | None = None
    ready_pending: bool = False
    gave_up: bool = False


class Supervisor:
    """Restarts the processes it watches when they exit, one `tick()` at a time, never blocking on one.

    Nothing here sleeps: the caller ticks from its own loop, so a stop signal during a back-off is handled
    by that loop at once, and a restart is only a spawn (readiness is polled on the following ticks).
    """

    def __init__(
        self,
        policy: RestartPolicy,
        *,
        say: Callable[[str], None],
        events: EventLog,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._say = say
        self.events = events
        self._clock = clock
        self._watched: list[_Watched] = []
        self._closed = False

    def watch(self, process: ManagedProcess, ready: Callable[[], bool] | None = None, what: str = "") -> None:
        self._closed = False
        self._watched.append(_Watched(process, ready, what, started_at=self._clock()))

    def gave_up(self) -> list[str]:
        return [w.process.name for w in self._watched if w.gave_up]

    def close(self) -> None:
        """No restart after this: the stack is stopping."""
        self._closed = True
        self._watched = []
        self.events.close()

    def tick(self) -> None:
        for watched in list(self._watched):
            if self._closed or stop_signals.stopping or stop_signals.received is not None:
                return
            self._tick(watched)

    def _tick(self, w: _Watched) -> None:
        now = self._clock()
        if w.gave_up:
            return
        if w.restart_at is not None:
            if now >= w.restart_at:
                self._restart(w)
            return
        if w.process.alive():
            if w.ready_pending:
                self._poll_ready(w, now)
            return
        self._exited(w, now)

    def _exited(self, w: _Watched, now: float) -> None:
        process = w.process
        returncode = process.process.returncode if process.process is not None else None
        uptime = now - w.started_at
        w.ready_pending = False
        if uptime >= self.policy.stable_after:
            w.attempt = 0
        while w.restarts and now - w.restarts[0] > self.policy.window:
            w.restarts.popleft()
        exit_fields = {
            "process": process.name,
            "pid": process.pid,
            "returncode": returncode,
            "exit": describe_exit(returncode),
            "uptime_s": round(uptime, 1),
            "log": str(process.log_path),
        }
        if len(w.restarts) >= self.policy.max_restarts:
            w.gave_up = True
            # Whatever it spawned would otherwise outlive it until the stack stops.
            process.signal_group(signal.SIGKILL)
            minutes = self.policy.window / 60
            self.events.write(
                "process_gave_up",
                level="error",
                restarts=len(w.restarts),
                window_s=self.policy.window,
                **exit_fields,
            )
            self._say(
                f"{process.name:<20} {describe_exit(returncode)} after {uptime:.1f} s, after "
                f"{len(w.restarts)} restarts within {minutes:g} min: crash loop, giving up on it. "
                f"The rest keeps running; fix it and start `make run` again. Last log lines "
                f"({process.log_path}):\n{process.tail(20)}"
            )
            return
        w.attempt += 1
        delay = self.policy.delay(w.attempt)
        w.restart_at = now + delay
        self.events.write("process_exited", level="warning", attempt=w.attempt, delay_s=delay, **exit_fields)
        self._say(
            f"{process.name:<20} {describe_exit(returncode)} after {uptime:.1f} s; "
            f"restart {w.attempt} in {delay:g} s  (log {process.log_path})"
        )

    def _restart(self, w: _Watched) -> None:
        process = w.process
        w.restart_at = None
        # The old group's leader is gone, but what it spawned may still hold its ports.
        process.signal_group(signal.SIGKILL)
        try:
            with process.log_path.open("a") as log:
                log.write(f"--- devstack: restart {w.attempt} ---\n")
        except OSError:
            pass
        try:
            # A stop signal between the spawn and the bookkeeping would leave a child nobody stops.
            with stop_signals.deferred():
                process.start()
                w.started_at = self._clock()
                w.restarts.append(w.started_at)
        except OSError as err:
            # Counted as a crash: the next tick sees the (old, exited) process and backs off further.
            w.started_at = self._clock()
            w.restarts.append(w.started_at)
            self.events.write("process_restart_failed", level="error", process=process.name, error=str(err))
            self._say(f"{process.name:<20} could not be restarted: {err}")
            return
        w.ready_pending = w.ready is not None
        self.events.write("process_restarted", process=process.name, pid=process.pid, attempt=w.attempt)
        self._say(f"{process.name:<20} restarted (attempt {w.attempt}), pid {process.pid}")

    def _poll_ready(self, w: _Watched, now: float) -> None:
        assert w.ready is not None
        try:
            ready = w.ready()
        except (httpx.HTTPError, OSError):
            ready = False
        if not ready:
            return
        w.ready_pending = False
        took = now - w.started_at
        self.events.write("process_ready", process=w.process.name, pid=w.process.pid, after_s=round(took, 1))
        self._say(f"{w.process.name:<20} back up in {took:4.1f} s  {w.what}".rstrip())
