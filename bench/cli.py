"""`python -m bench` / `make bench`: run the benchmark and publish its table.

The full run (the defaults) bills 10,000, 50,000 and 100,000 entries over 500 projects and takes about
half an hour on two cores; `--sizes`, `--projects`, `--burst-rates` and friends choose a smaller one, and
`--smoke` is the few-hundred-entry run the test suite makes.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from bench import figures
from bench.config import BenchConfig
from bench.options import BENCH_DIR, build_parser, config_from
from bench.report import measure, render
from bench.runner import Bench, Results
from bench.stacks import start_worlds

DATA_DIR = BENCH_DIR / ".data"


def _stop_on_sigterm() -> None:
    # The stack's processes run in their own sessions: a terminated benchmark must still stop them.
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run(config: BenchConfig, *, data_dir: Path, say: Callable[[str], None]) -> Results:
    """Start both worlds under `data_dir`, run every workload, stop everything; returns the figures."""
    started = time.monotonic()
    say(f"starting the stack and the direct script's vendors under {data_dir}")
    worlds = start_worlds(data_dir)
    try:
        say(f"both worlds up in {time.monotonic() - started:.0f}s")
        return asyncio.run(Bench(config, worlds, say).run())
    finally:
        worlds.stop()


def write(results: Results, text: str, directory: Path) -> Path:
    """The Markdown and its figures as JSON, `<stamp>-<label>.md` and `.json`; a complete full run is also
    `latest.md` and `latest.json`, which the next run reads as its previous run (so read it before this)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{results.started_at.strftime('%Y-%m-%d-%H%M')}-{results.config.label}"
    path = directory / f"{name}.md"
    path.write_text(text)
    snapshot = figures.Snapshot(run=name, figures=measure(results)).to_json()
    (directory / f"{name}.json").write_text(snapshot)
    if results.config.label == "full" and results.failure is None:
        (directory / "latest.md").write_text(text)
        (directory / figures.LATEST).write_text(snapshot)
    return path


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed options (`python -m bench` and `make bench` alike); returns the exit status."""
    config = config_from(args)
    _stop_on_sigterm()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    data_dir = (args.data_dir or DATA_DIR) / f"{stamp}-{config.label}"

    def say(message: str) -> None:
        print(f"[{datetime.now(UTC).strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    try:
        results = run(config, data_dir=data_dir, say=say)
    except KeyboardInterrupt:
        say(f"interrupted; the stack is stopped, its logs are under {data_dir / 'pssync' / 'logs'}")
        return 130
    except Exception as failure:
        say(f"benchmark failed: {failure}; logs under {data_dir / 'pssync' / 'logs'}")
        raise
    results.make_test_seconds = args.make_test_minutes * 60 if args.make_test_minutes is not None else None
    text = render(results, previous=figures.read(args.results_dir / figures.LATEST))
    print(text, flush=True)
    if not args.no_write:
        say(f"results written to {write(results, text, args.results_dir)}")
    if results.failure is not None:
        say(f"the run failed ({results.failure}); its data and logs are kept under {data_dir}")
        return 1
    if not args.keep_data:
        shutil.rmtree(data_dir, ignore_errors=True)
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    sys.exit(run_from_args(build_parser().parse_args(argv)))
