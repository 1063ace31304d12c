"""Where the time goes: samples of the stack's processes while the benchmark's heaviest phases run.

py-spy (a development dependency) samples each Python process without stopping it: the worker, the
ingress, the vendor sandboxes and trytond. perf, when the machine has it (Debian's `linux-perf`), samples
the Temporal server, a stripped Go binary whose functions `bench.go_symbols` names from its own table.
Each process's busy samples are summed by what they were doing: for the worker, activities, workflow code
and the plumbing between them; for a vendor, the request handler; for Temporal, the server's layers.
Samples waiting in a selector or an idle pool thread are not busy; the share of busy samples against all
says how much of the phase the process worked.
"""

from __future__ import annotations

import contextlib
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.go_symbols import GoSymbols

# py-spy's own CPU grows with its rate and the processes it reads: at 25 a second over seven processes it
# took about a tenth of the two cores from the phase it measured; 10 a second still gives over a thousand
# samples a process in the phases it profiles.
PY_SPY_RATE = 10
PERF_RATE = 49
TOP = 6
TEMPORAL = "temporal"
WORKER = "worker"

# A sample whose innermost frame is one of these is a thread waiting for work, not doing any.
_WAITING = (
    "select (selectors.py",
    "EpollSelector.select",
    "_PollLikeSelector.select",
    "Condition.wait (threading.py",
    "_worker (concurrent/futures/thread.py",
    "accept (socket.py",
    "sleep (",
)


@dataclass
class ProcessProfile:
    process: str
    tool: str
    samples: int = 0
    busy: int = 0
    # Busy samples by coarse kind, and by the finest place worth naming (handler, activity, function).
    kinds: list[tuple[str, int]] = field(default_factory=list)
    places: list[tuple[str, int]] = field(default_factory=list)
    # Why the process has no profile (a sampler missing or refused).
    missing: str | None = None


@dataclass
class PhaseProfile:
    phase: str
    seconds: float
    processes: list[ProcessProfile]
    # The samplers' own CPU: it came off the same two cores as the phase.
    sampler_cpu_seconds: float


@dataclass
class _Sampler:
    name: str
    tool: str
    output: Path
    process: subprocess.Popen[bytes] | None = None
    binary: Path | None = None
    missing: str | None = None


class Profiler:
    """`with profiler.sampling("billing 100,000 entries, ps-sync", names):` samples those processes."""

    def __init__(self, processes: Mapping[str, int], directory: Path) -> None:
        self._roots = dict(processes)
        self._directory = directory
        self.phases: list[PhaseProfile] = []

    @contextlib.contextmanager
    def sampling(self, phase: str, names: Sequence[str]) -> Iterator[None]:
        self._directory.mkdir(parents=True, exist_ok=True)
        stem = re.sub(r"[^a-z0-9]+", "-", phase.lower()).strip("-")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        wanted = [name for name in names if name in self._roots]
        samplers = [self._start(name, self._directory / f"{stem}-{name}") for name in wanted]
        try:
            yield
        finally:
            seconds = time.monotonic() - started
            for sampler in samplers:
                if sampler.process is not None and sampler.process.poll() is None:
                    sampler.process.send_signal(signal.SIGINT)
            for sampler in samplers:
                _finish(sampler)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            self.phases.append(PhaseProfile(phase, seconds, [_summary(s) for s in samplers], cpu))

    def _start(self, name: str, output: Path) -> _Sampler:
        pid = self._roots[name]
        if name == TEMPORAL:
            sampler = _Sampler(name, "perf", output.with_name(output.name + ".perf"))
            perf = shutil.which("perf")
            if perf is None:
                sampler.missing = "perf is not installed (Debian: apt install linux-perf)"
                return sampler
            sampler.binary = Path(f"/proc/{pid}/exe").resolve()
            command = [perf, "record", "-e", "cpu-clock", "-F", str(PERF_RATE), "-g", "-p", str(pid)]
            command += ["-o", str(sampler.output)]
        else:
            sampler = _Sampler(name, "py-spy", output.with_name(output.name + ".stacks"))
            py_spy = Path(sys.executable).parent / "py-spy"
            if not py_spy.exists():
                sampler.missing = "py-spy is not installed (make install puts it in the virtualenv)"
                return sampler
            command = [str(py_spy), "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE)]
            # Not stopping the process keeps its timing; --subprocesses follows trytond under its launcher.
            command += ["--nonblocking", "--subprocesses", "--format", "raw", "-o", str(sampler.output)]
        sampler.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        return sampler


def _finish(sampler: _Sampler) -> None:
    if sampler.process is None:
        return
    try:
        _, errors = sampler.process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        sampler.process.kill()
        _, errors = sampler.process.communicate()
    if not sampler.output.exists() or sampler.output.stat().st_size == 0:
        said = (errors or b"").decode(errors="replace").strip().splitlines()
        sampler.missing = f"{sampler.tool} wrote no samples: {said[-1] if said else 'no reason given'}"


def _summary(sampler: _Sampler) -> ProcessProfile:
    profile = ProcessProfile(process=sampler.name, tool=sampler.tool, missing=sampler.missing)
    if sampler.missing is not None:
        return profile
    if sampler.tool == "perf":
        assert sampler.binary is not None
        chains = _perf_chains(sampler.output)
        return go_profile(profile, chains, GoSymbols(sampler.binary), sampler.binary.name)
    stacks = python_stacks(sampler.output.read_text(errors="replace").splitlines())
    return python_profile(profile, stacks, worker=sampler.name == WORKER)


# --- Python processes (py-spy's raw format: frames from the outermost, `;`-separated, then a count) -------


def python_stacks(lines: Iterable[str]) -> list[tuple[list[str], int]]:
    stacks = []
    for line in lines:
        frames, _, count = line.rstrip().rpartition(" ")
        if not count.isdigit():
            continue
        # --subprocesses puts the process first ("process 123:..."); the place is in the frames after it.
        kept = [frame for frame in frames.split(";") if frame and not frame.startswith("process ")]
        stacks.append((kept, int(count)))
    return stacks


def python_profile(
    profile: ProcessProfile, stacks: Sequence[tuple[list[str], int]], *, worker: bool
) -> ProcessProfile:
    kinds: Counter[str] = Counter()
    places: Counter[str] = Counter()
    for frames, count in stacks:
        profile.samples += count
        if not frames or frames[-1].startswith(_WAITING):
            continue
        profile.busy += count
        kind, place = _worker_place(frames) if worker else _server_place(frames)
        kinds[kind] += count
        places[place] += count
    profile.kinds, profile.places = kinds.most_common(TOP), places.most_common(TOP)
    return profile


def _function(frame: str) -> str:
    """`name (path/to/module.py:12)` as `name (module.py)`."""
    name, _, where = frame.partition(" (")
    module = where.rsplit(":", 1)[0].rsplit("/", 1)[-1]
    return f"{name} ({module})" if module else name


_OWN_CODE = re.compile(r"\((?:.*/)?(activities|workflows|connectors|ledger|domain|canonical|runs)/[^:]+:")
# Wrappers every activity passes through: the place is the activity they wrap.
_WRAPPERS = ("activities/vendor_trouble.py", "observability/", "runs/run_metrics.py")


def _worker_place(frames: list[str]) -> tuple[str, str]:
    stack = ";".join(frames)
    own = next((f for f in frames if _OWN_CODE.search(f) and not any(w in f for w in _WRAPPERS)), None)
    place = _function(own) if own else _function(frames[-1])
    if "_execute_sync_activity" in stack:
        return "activities in the thread pool (ledger SQL, rating)", place
    if "temporalio/worker/_activity.py" in stack:
        return "activities on the event loop (vendor HTTP)", place
    if "workflow_sandbox" in stack or "_workflow_instance.py" in stack:
        return "workflow code and its sandbox", place
    if "temporalio/worker/_workflow.py" in stack:
        return "workflow activations (decode, encode, hand-over)", place
    # py-spy reads a running thread's stack without stopping it, so some stacks lose their outer frames:
    # what is left still says whether it was the ledger's SQL or a vendor's socket.
    if "sqlalchemy/" in stack:
        return "activities in the thread pool (ledger SQL, rating)", place
    if any(part in stack for part in ("httpcore/", "httpx/", "h11/", "_SelectorSocketTransport")):
        return "activities on the event loop (vendor HTTP)", place
    if "call_soon_threadsafe" in stack or "_read_from_self" in stack:
        return "event-loop wake-ups from other threads", place
    if "temporalio/bridge" in stack:
        return "calls into the Rust core", place
    return "other", place


def _server_place(frames: list[str]) -> tuple[str, str]:
    for index, frame in enumerate(frames):
        if frame.startswith("run_endpoint_function ") and index + 1 < len(frames):
            return "request handlers", _function(frames[index + 1])
        if frame.startswith("_dispatch (") and "trytond/protocols" in frame and index + 1 < len(frames):
            inner = frames[index + 1 :]
            # The first method of a module that is not a decorator's wrapper names what was asked.
            module = next((f for f in inner if "trytond/modules/" in f and "<locals>" not in f), inner[0])
            return "RPC methods", _function(module)
    stack = ";".join(frames)
    if any(part in stack for part in ("uvicorn/", "starlette/", "fastapi/", "h11/", "werkzeug/")):
        return "HTTP server outside handlers", _function(frames[-1])
    return "other", _function(frames[-1])


# --- the Temporal server (perf script: a sample's frames, innermost first, a blank line after each) --------


def _perf_chains(data: Path) -> Iterator[list[tuple[int, str]]]:
    perf = shutil.which("perf") or "perf"
    with subprocess.Popen(
        [perf, "script", "-i", str(data), "-F", "ip,dso"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as script:
        assert script.stdout is not None
        chain: list[tuple[int, str]] = []
        for line in script.stdout:
            parts = line.split()
            if not parts:
                if chain:
                    yield chain
                chain = []
                continue
            with contextlib.suppress(ValueError):
                chain.append((int(parts[0], 16), parts[1].strip("()") if len(parts) > 1 else ""))
        if chain:
            yield chain


_GO_KINDS = (
    ("modernc.org/sqlite", "SQLite (pure Go)"),
    ("modernc.org/libc", "SQLite (pure Go)"),
    ("google.golang.org/protobuf", "protobuf"),
    ("go.temporal.io/api/", "protobuf"),
    ("google.golang.org/grpc", "gRPC and HTTP/2"),
    ("golang.org/x/net/http2", "gRPC and HTTP/2"),
    ("go.temporal.io/server/common/persistence", "persistence layer"),
    ("go.temporal.io/server", "Temporal services"),
    ("database/sql", "persistence layer"),
    ("github.com/jmoiron/sqlx", "persistence layer"),
)
_GO_RUNTIME_MEMORY = ("gc", "scan", "mark", "sweep", "malloc", "alloc", "heap", "span", "memclr", "wb")
# Layers a sample passes through, from its whole chain: they overlap, so their shares do not add up.
_GO_LAYERS = (
    ("google.golang.org/grpc.(*Server).handleStream", "serving gRPC requests"),
    ("go.temporal.io/server/service/history/", "history service"),
    ("go.temporal.io/server/service/matching/", "matching service"),
    ("go.temporal.io/server/service/frontend/", "frontend service"),
    ("go.temporal.io/server/common/persistence/visibility", "visibility store"),
    ("go.temporal.io/server/common/persistence/", "persistence"),
    ("modernc.org/sqlite", "SQLite"),
    ("runtime.gcBgMarkWorker", "garbage collector"),
)


def _go_kind(name: str) -> str:
    if name.startswith("[kernel]"):
        return "kernel (system calls, scheduling)"
    if name.startswith("runtime.") or name.startswith("internal/runtime"):
        lowered = name.lower()
        return (
            "Go memory (allocation, collection)"
            if any(word in lowered for word in _GO_RUNTIME_MEMORY)
            else "Go scheduler and runtime"
        )
    return next((kind for prefix, kind in _GO_KINDS if name.startswith(prefix)), "other Go code")


def _go_frame(address: int, dso: str, symbols: GoSymbols, binary: str) -> str:
    if "kernel" in dso:
        return "[kernel]"
    return symbols.name(address) if Path(dso).name == binary else f"[{dso}]"


def go_profile(
    profile: ProcessProfile, chains: Iterable[list[tuple[int, str]]], symbols: GoSymbols, binary: str
) -> ProcessProfile:
    """`binary` is the file name the server's frames are in (perf names each frame's file)."""
    kinds: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for chain in chains:
        names = [_go_frame(address, dso, symbols, binary) for address, dso in chain]
        profile.samples += 1
        profile.busy += 1
        kinds[_go_kind(names[0])] += 1
        passed = {layer for prefix, layer in _GO_LAYERS for name in names if name.startswith(prefix)}
        layers.update(passed)
    profile.kinds, profile.places = kinds.most_common(TOP + 2), layers.most_common()
    return profile


# --- the report -----------------------------------------------------------------------------------------


def _shares(pairs: Sequence[tuple[str, int]], whole: int) -> str:
    return "; ".join(f"{name} {count / whole:.0%}" for name, count in pairs) if whole else "-"


def section(phases: Sequence[PhaseProfile]) -> list[str]:
    if not phases:
        return ["Not profiled (run with --profile)."]
    lines = [
        f"py-spy samples the Python processes {PY_SPY_RATE} times a second without stopping them; perf "
        f"samples the Temporal server {PERF_RATE} times a second, its frames named from the binary's Go "
        "function table. Busy = samples not waiting in a selector or an idle pool thread (perf samples only "
        "on CPU). For Temporal, the places are the layers a sample passed through (they overlap).",
        "",
    ]
    for phase in phases:
        lines += [
            f"**{phase.phase}** ({phase.seconds:.0f} s; the samplers used "
            f"{phase.sampler_cpu_seconds:.1f} CPU s)",
            "",
            "| process | tool | busy / samples | busy samples by kind | busy samples by place |",
            "|---|---|---|---|---|",
        ]
        for p in phase.processes:
            if p.missing is not None:
                lines.append(f"| {p.process} | {p.tool} | - | {p.missing} | - |")
                continue
            lines.append(
                f"| {p.process} | {p.tool} | {p.busy:,} / {p.samples:,} | {_shares(p.kinds, p.busy)} "
                f"| {_shares(p.places, p.busy)} |"
            )
        lines.append("")
    return lines
