"""The benchmark's profiler: real samplers on real processes, the Go symbol table read from the Temporal
binary this checkout runs, and the summaries over stacks written out by hand."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from bench import profiling
from bench.go_symbols import GoSymbols, entry_offset
from bench.profiling import PhaseProfile, ProcessProfile, Profiler, go_profile, python_profile, python_stacks

TEMPORAL = Path(sys.executable).parent / "temporal"


def test_the_temporal_binary_names_its_entry_point() -> None:
    # The ELF header's entry point, mapped through the load segments, is an independent place to look up:
    # Go's linker starts every linux/amd64 program at _rt0_amd64_linux.
    symbols = GoSymbols(TEMPORAL)
    start = entry_offset(TEMPORAL)
    assert symbols.name(start) == "_rt0_amd64_linux"
    assert symbols.name(start - 1) != "_rt0_amd64_linux"


def test_a_binary_without_a_go_table_is_refused() -> None:
    with pytest.raises(ValueError, match="no Go function table"):
        GoSymbols(Path(os.path.realpath(sys.executable)))


WORKER_STACKS = [
    # An activity calling a vendor on the event loop, through the wrappers every activity passes.
    "main (worker.py:341);_ActivityWorker._execute_activity (temporalio/worker/_activity.py:712);"
    "_WatchOutcome.execute_activity (activities/vendor_trouble.py:333);"
    "PsaActivities.read_rate_card (activities/psa.py:88);send (connectors/http.py:168) 7",
    # A ledger activity in the thread pool.
    "_bootstrap (threading.py:1002);_execute_sync_activity (temporalio/worker/_activity.py:983);"
    "LedgerActivities.audit (activities/ledger.py:301);append_audit (ledger/audit.py:39) 3",
    # Workflow code running in the sandbox.
    "main (worker.py:341);_Instance._run_code (temporalio/worker/workflow_sandbox/_runner.py:193);"
    "TimeToBilling.run (workflows/time_to_billing.py:120) 2",
    # Stacks read mid-change lose their outer frames; the rest still tells SQL from a vendor's socket.
    "Connection.exec_driver_sql (sqlalchemy/engine/base.py:1801);"
    "do_execute (sqlalchemy/engine/default.py:1) 4",
    "AsyncHTTP11Connection._send_event (httpcore/_async/http11.py:1);"
    "_SelectorSocketTransport.write (asyncio/selector_events.py:1057) 1",
    # Waiting, twice: the event loop's selector and an idle pool thread.
    "main (worker.py:341);EpollSelector.select (selectors.py:468) 11",
    "_bootstrap (threading.py:1002);_worker (concurrent/futures/thread.py:81) 5",
]


def test_the_worker_samples_go_to_activities_workflow_code_and_waiting() -> None:
    profile = python_profile(ProcessProfile("worker", "py-spy"), python_stacks(WORKER_STACKS), worker=True)
    assert (profile.samples, profile.busy) == (33, 17)
    assert dict(profile.kinds) == {
        "activities on the event loop (vendor HTTP)": 8,
        "activities in the thread pool (ledger SQL, rating)": 7,
        "workflow code and its sandbox": 2,
    }
    assert dict(profile.places) == {
        "PsaActivities.read_rate_card (psa.py)": 7,
        "LedgerActivities.audit (ledger.py)": 3,
        "do_execute (default.py)": 4,
        "TimeToBilling.run (time_to_billing.py)": 2,
        "_SelectorSocketTransport.write (selector_events.py)": 1,
    }


def test_a_vendor_s_samples_go_to_its_handlers() -> None:
    stacks = [
        'process 42:"python -m sandboxes.kantata";run (uvicorn/server.py:60);'
        "run_endpoint_function (fastapi/routing.py:381);"
        "list_custom_field_values (sandboxes/kantata/custom_fields.py:212);<lambda> (x.py:1) 4",
        "run (uvicorn/server.py:60);write (asyncio/selector_events.py:1057) 1",
        # trytond: the decorator's wrapper is passed over for the module method it wraps.
        "_dispatch (trytond/protocols/dispatcher.py:230);"
        "set_employee.<locals>.wrapper (trytond/modules/company/model.py:77);"
        "Invoice.post (trytond/modules/account_invoice/invoice.py:2);"
        "ModelSQL.search (trytond/model/modelsql.py:2014) 5",
    ]
    profile = python_profile(ProcessProfile("kantata", "py-spy"), python_stacks(stacks), worker=False)
    assert profile.busy == 10
    assert dict(profile.kinds) == {"request handlers": 4, "HTTP server outside handlers": 1, "RPC methods": 5}
    assert dict(profile.places) == {
        "list_custom_field_values (custom_fields.py)": 4,
        "write (selector_events.py)": 1,
        "Invoice.post (invoice.py)": 5,
    }


def test_temporal_samples_are_named_from_the_binary_and_kernel_samples_stay_kernel() -> None:
    symbols, start = GoSymbols(TEMPORAL), entry_offset(TEMPORAL)
    chains = [
        [(start, str(TEMPORAL))],
        [(0xFFFFFFFF81000000, "[kernel.kallsyms]"), (start, str(TEMPORAL))],
    ]
    profile = go_profile(ProcessProfile("temporal", "perf"), chains, symbols, TEMPORAL.name)
    assert profile.busy == 2
    assert dict(profile.kinds) == {"other Go code": 1, "kernel (system calls, scheduling)": 1}


BUSY = textwrap.dedent(
    """
    import time

    def spin_NAME():
        end = time.monotonic() + 60
        while time.monotonic() < end:
            sum(range(1000))

    print("ready", flush=True)
    spin_NAME()
    """
)


def _spinner(directory: Path, name: str) -> subprocess.Popen[str]:
    script = directory / f"{name}.py"
    script.write_text(BUSY.replace("NAME", name))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


def test_the_profiler_samples_each_running_process_and_names_where_it_spins(tmp_path: Path) -> None:
    spinners = {name: _spinner(tmp_path, name) for name in ("first", "second")}
    try:
        profiler = Profiler({name: p.pid for name, p in spinners.items()}, tmp_path / "profiles")
        with profiler.sampling("spinning", ["first", "second", "not running"]):
            time.sleep(4)
    finally:
        for process in spinners.values():
            process.kill()
            process.wait()
    [phase] = profiler.phases
    assert [p.process for p in phase.processes] == ["first", "second"]
    for profile in phase.processes:
        assert profile.missing is None, profile.missing
        assert profile.samples >= 20 and profile.busy >= 20
        assert profile.places[0][0] == f"spin_{profile.process} ({profile.process}.py)"


def test_without_perf_the_temporal_row_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(profiling.shutil, "which", lambda name: None)
    profiler = Profiler({"temporal": os.getpid()}, tmp_path)
    with profiler.sampling("billing", ["temporal"]):
        pass
    [profile] = profiler.phases[0].processes
    assert profile.missing == "perf is not installed (Debian: apt install linux-perf)"
    lines = profiling.section(profiler.phases)
    assert "| temporal | perf | - | perf is not installed (Debian: apt install linux-perf) | - |" in lines


def test_the_section_gives_shares_of_busy_samples() -> None:
    profile = ProcessProfile("worker", "py-spy", samples=40, busy=20, kinds=[("a", 15), ("b", 5)])
    profile.places = [("x (y.py)", 10)]
    lines = profiling.section([PhaseProfile("billing 100,000 entries, ps-sync", 200.0, [profile], 3.25)])
    assert "**billing 100,000 entries, ps-sync** (200 s; the samplers used 3.2 CPU s)" in lines
    assert "| worker | py-spy | 20 / 40 | a 75%; b 25% | x (y.py) 50% |" in lines
    assert profiling.section([]) == ["Not profiled (run with --profile)."]
