"""`python -m chaos` (`make chaos`): the chaos run; prints its table, exits 1 unless everything survived.

`--short` is the version `make test` runs (tests/e2e/test_chaos.py). `--results` writes the table to a
file as well, `--json` the figures.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence

from chaos.options import parse
from chaos.report import render
from chaos.run import run_chaos
from devstack.processes import StopRequested, stop_signals


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    if options.data_dir is not None and options.data_dir.exists() and any(options.data_dir.iterdir()):
        # The audit counts every project, customer and invoice the vendors hold as this run's own.
        print(f"{options.data_dir} is not empty: a chaos run starts from nothing", file=sys.stderr)
        return 2
    began = time.monotonic()

    def say(message: str) -> None:
        if options.verbose:
            print(f"{time.monotonic() - began:7.1f}s  {message}", flush=True)

    # Whatever this process inherited, SIGINT or SIGTERM stops the stack it started.
    stop_signals.install()
    try:
        outcome = run_chaos(options, say)
    except StopRequested as stop:
        return 128 + stop.signum
    table = render(outcome)
    print("\n" + table, flush=True)
    if options.results is not None:
        options.results.parent.mkdir(parents=True, exist_ok=True)
        options.results.write_text(table)
    if options.summary_json is not None:
        options.summary_json.parent.mkdir(parents=True, exist_ok=True)
        options.summary_json.write_text(json.dumps(outcome.summary(), indent=2, default=str) + "\n")
    return 0 if outcome.clean else 1


if __name__ == "__main__":
    sys.exit(main())
