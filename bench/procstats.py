"""CPU seconds and resident memory of the stack's processes, read from /proc (Linux).

A sampler thread reads every process tree (a Tryton launcher and its trytond child count as one) twice a
second, so each workload gets its own CPU seconds and peak RSS per process.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may hold spaces; the fields after it are plain.
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields is not None and int(fields[1]) == pid:
                found.append(int(entry))
    return found


def process_tree(pid: int) -> list[int]:
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        tree.append(current)
        pending.extend(_children(current))
    return tree


def cpu_seconds(pid: int) -> float:
    """User and system CPU of the process and the children it has waited for."""
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of stat; index 0 here is field 3 (state).
    return sum(int(value) for value in fields[11:15]) / _TICKS


def rss_bytes(pid: int) -> int:
    fields = _stat(pid)
    return 0 if fields is None else int(fields[21]) * _PAGE


@dataclass
class Usage:
    cpu_seconds: float = 0.0
    peak_rss: int = 0


@dataclass
class Phase:
    name: str
    started: float
    ended: float | None = None
    usage: dict[str, Usage] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started


class Monitor:
    """Samples named process trees; `with monitor.phase("billing 10k"):` scopes the figures."""

    def __init__(
        self, processes: Mapping[str, int], *, alone: Collection[str] = (), interval: float = 0.5
    ) -> None:
        """`processes` names the root of each tree; those named in `alone` count without their children
        (the benchmark's own process is the parent of every stack process)."""
        self._roots = dict(processes)
        self._alone = set(alone)
        self._interval = interval
        self._lock = threading.Lock()
        self._trees: dict[str, list[int]] = self._scan()
        self._open: list[Phase] = []
        self.phases: list[Phase] = []
        self.peak_rss: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-procstats", daemon=True)
        self._tree_refreshed = 0.0

    def start(self) -> Monitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _scan(self) -> dict[str, list[int]]:
        return {
            name: [pid] if name in self._alone else process_tree(pid) for name, pid in self._roots.items()
        }

    def _cpu(self) -> dict[str, float]:
        return {name: sum(cpu_seconds(pid) for pid in tree) for name, tree in self._trees.items()}

    def _rss(self) -> dict[str, int]:
        return {name: sum(rss_bytes(pid) for pid in tree) for name, tree in self._trees.items()}

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            now = time.monotonic()
            if now - self._tree_refreshed > 10:
                # Process trees change rarely (trytond is forked once); rescanning /proc is not free.
                self._trees = self._scan()
                self._tree_refreshed = now
            rss = self._rss()
            with self._lock:
                for name, value in rss.items():
                    self.peak_rss[name] = max(self.peak_rss.get(name, 0), value)
                    for phase in self._open:
                        usage = phase.usage.setdefault(name, Usage())
                        usage.peak_rss = max(usage.peak_rss, value)

    @contextmanager
    def phase(self, name: str) -> Iterator[Phase]:
        phase = Phase(name=name, started=time.monotonic())
        before = self._cpu()
        with self._lock:
            self._open.append(phase)
        try:
            yield phase
        finally:
            after = self._cpu()
            rss = self._rss()
            with self._lock:
                self._open.remove(phase)
                phase.ended = time.monotonic()
                for name_, value in after.items():
                    usage = phase.usage.setdefault(name_, Usage())
                    usage.cpu_seconds = max(0.0, value - before.get(name_, 0.0))
                    usage.peak_rss = max(usage.peak_rss, rss.get(name_, 0))
                self.phases.append(phase)
