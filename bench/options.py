"""The benchmark's command-line options, of `python -m bench`."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from bench.config import SMOKE, BenchConfig

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
DESCRIPTION = (
    "Run the ps-sync benchmark and publish its table. The full run (the defaults) bills 10,000, 50,000 "
    "and 100,000 entries over 500 projects and takes about half an hour on two cores; --sizes, "
    "--projects, --burst-rates and friends choose a smaller one, and --smoke is the test suite's run."
)


def _numbers(text: str, kind: Callable[[str], float]) -> tuple[float, ...]:
    try:
        values = tuple(kind(part.replace("_", "")) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=DESCRIPTION)
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's options, on its own parser or on another that embeds it."""
    defaults = BenchConfig()
    parser.add_argument("--smoke", action="store_true", help="a few hundred entries (the test suite's run)")
    parser.add_argument(
        "--sizes",
        type=lambda t: tuple(int(v) for v in _numbers(t, int)),
        help=f"approved entries per billing size (default {','.join(map(str, defaults.sizes))})",
    )
    parser.add_argument("--projects", type=int, help=f"projects billed (default {defaults.projects})")
    parser.add_argument(
        "--burst-rates",
        type=lambda t: _numbers(t, float),
        help="closed-won deals per second, one burst each (default 1,5,20)",
    )
    parser.add_argument("--burst-seconds", type=float, help="length of each ps-sync burst (default 60)")
    parser.add_argument("--direct-burst-seconds", type=float, help="length of each direct burst (default 20)")
    parser.add_argument("--governed-entries", type=int, help="entries billed under Xero's limits; 0 skips it")
    parser.add_argument("--governed-projects", type=int, help="projects of the governed run (default 100)")
    parser.add_argument("--ceiling-seconds", type=float, help="length of each trivial-workflow ceiling run")
    parser.add_argument("--seed", type=int, help=f"the firm's seed (default {defaults.seed})")
    parser.add_argument("--eu-share", type=float, help="share of deals booked in Tryton (default 0.05)")
    parser.add_argument("--direct-parallel", type=int, help="projects the direct script bills at once (16)")
    parser.add_argument(
        "--trigger",
        choices=("feed", "starter"),
        help="billing runs start from the PSA feed poller (default) or from the bench via ps-sync's starter",
    )
    parser.add_argument("--data-dir", type=Path, help="where the stack keeps its data (default bench/.data)")
    parser.add_argument("--keep-data", action="store_true", help="keep the run's data and logs afterwards")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="where the table is written")
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--label", help="names the run in the table and the file name")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample ps-sync's processes through the largest billing and the fastest burst (py-spy, perf)",
    )
    parser.add_argument(
        "--make-test-minutes",
        type=float,
        help="`make test` wall time from a fresh clone, measured elsewhere, for the targets table",
    )


def config_from(args: argparse.Namespace) -> BenchConfig:
    config = SMOKE if args.smoke else BenchConfig()
    overrides = {
        field: getattr(args, field)
        for field in (
            "sizes",
            "projects",
            "burst_rates",
            "burst_seconds",
            "direct_burst_seconds",
            "governed_entries",
            "governed_projects",
            "ceiling_seconds",
            "seed",
            "eu_share",
            "direct_parallel",
            "trigger",
            "label",
        )
        if getattr(args, field) is not None
    }
    if not args.smoke and overrides and "label" not in overrides:
        overrides["label"] = "custom"
    # Profiling changes what is reported, not what is measured: a profiled full run is still the full run.
    return replace(config, **overrides, profile=args.profile)
