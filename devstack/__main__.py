"""`python -m devstack run|demo` (`make run`, `make demo`): the whole system on this machine, with the story.

Development tooling: it starts the vendor sandboxes and a Temporal dev server, so it is installed by
`make install` and never shipped in the product's wheel or image.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from devstack.run import run_demo, run_dev


def _data_dir() -> Path:
    return Path(os.environ.get("PSSYNC_DATA_DIR", ".data")).resolve()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the whole system locally with the demo story (make run)")
    run.add_argument("--no-story", action="store_true", help="start everything but do not run the story")
    commands.add_parser("demo", help="run the story once, print the summary, stop (make demo)")
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "run":
        sys.exit(run_dev(_data_dir(), story=not args.no_story))
    sys.exit(run_demo(_data_dir()))


if __name__ == "__main__":
    main()
