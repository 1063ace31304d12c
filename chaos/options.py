"""What a chaos run does, from the command line: seed, workload size, and how hard the world is shaken."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

VENDORS = ("salesforce", "kantata", "xero", "tryton")
# Polled all the time (the change feed, the payment pollers), so an outage of one always bites.
POLLED_VENDORS = ("kantata", "xero", "tryton")


@dataclass(frozen=True)
class ChaosOptions:
    seed: int = 20261207
    deals: int = 12
    # Deals being played at once (closing, logging time, approving, paying).
    parallel: int = 4
    worker_kills: int = 2
    temporal_restarts: int = 1
    outages: int = 1
    outage_seconds: float = 60.0
    outage_vendors: tuple[str, ...] = VENDORS
    # Each fault kind's share of ps-sync's calls to every sandbox (Tryton's proxy: a third of it). Lost
    # replies twice that, on writes only; timeouts a quarter of it, as each costs the client 30 s.
    fault_rate: float = 0.015
    duplicate_event_rate: float = 0.25
    # What an injected 429 tells the caller to wait, where the vendor's 429 carries a Retry-After.
    retry_after_seconds: int = 5
    # Seconds into the workload before the first disruption, and the span the disruptions are spread over.
    disrupt_after: float = 15.0
    disrupt_window: float = 150.0
    # Kills wait for a posting in flight; none comes closer than this to the previous kill.
    kill_spacing_seconds: float = 20.0
    # How long one deal may take from closing to paid, and the whole run to settle once faults stop.
    deal_seconds: float = 900.0
    settle_seconds: float = 240.0
    workers: int = 2
    data_dir: Path | None = None
    results: Path | None = None
    # The figures as JSON (what tests read).
    summary_json: Path | None = None
    keep_data: bool = False
    verbose: bool = True

    def short(self) -> ChaosOptions:
        """The version `make test` runs: one deal per ERP, one of each disruption, a short outage."""
        return replace(
            self,
            deals=2,
            parallel=2,
            worker_kills=1,
            temporal_restarts=1,
            outages=1,
            outage_seconds=15.0,
            outage_vendors=POLLED_VENDORS,
            disrupt_after=8.0,
            disrupt_window=25.0,
            retry_after_seconds=3,
            fault_rate=0.005,
            deal_seconds=240.0,
            settle_seconds=90.0,
        )


def build_parser() -> argparse.ArgumentParser:
    defaults = ChaosOptions()
    parser = argparse.ArgumentParser(
        prog="python -m chaos",
        description="ps-sync's whole stack under faults, over both ERPs, then source held against target.",
    )
    parser.add_argument("--short", action="store_true", help="the short version (2 deals) `make test` runs")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--deals", type=int, help=f"deals to play, UK and EU alternately ({defaults.deals})")
    parser.add_argument("--parallel", type=int, help=f"deals played at once ({defaults.parallel})")
    parser.add_argument(
        "--worker-kills", type=int, help=f"worker SIGKILLs during posting ({defaults.worker_kills})"
    )
    parser.add_argument(
        "--temporal-restarts", type=int, help=f"Temporal server restarts ({defaults.temporal_restarts})"
    )
    parser.add_argument("--outages", type=int, help=f"vendor outages ({defaults.outages})")
    parser.add_argument("--outage-seconds", type=float, help=f"length of each ({defaults.outage_seconds:g})")
    parser.add_argument(
        "--fault-rate", type=float, help=f"share of calls per fault kind ({defaults.fault_rate})"
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where the stack keeps its state (default: a fresh one)"
    )
    parser.add_argument("--results", type=Path, help="write the Markdown table here too")
    parser.add_argument("--json", type=Path, dest="summary_json", help="write the figures as JSON here")
    parser.add_argument("--keep-data", action="store_true", help="keep the data directory afterwards")
    parser.add_argument("--quiet", action="store_true", help="print the table only")
    return parser


def parse(argv: Sequence[str] | None = None) -> ChaosOptions:
    args = build_parser().parse_args(argv)
    options = ChaosOptions(seed=args.seed)
    if args.short:
        options = options.short()
    overrides = {
        "deals": args.deals,
        "parallel": args.parallel,
        "worker_kills": args.worker_kills,
        "temporal_restarts": args.temporal_restarts,
        "outages": args.outages,
        "outage_seconds": args.outage_seconds,
        "fault_rate": args.fault_rate,
        "data_dir": args.data_dir,
        "results": args.results,
        "summary_json": args.summary_json,
    }
    options = replace(options, **{k: v for k, v in overrides.items() if v is not None})
    return replace(options, keep_data=args.keep_data, verbose=not args.quiet)
