"""`pssync`: run the system locally, run the demo, and act on running processes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pssync.settings import Settings


def _data_dir() -> Path:
    return Path(os.environ.get("PSSYNC_DATA_DIR", ".data")).resolve()


def cmd_dev(args: argparse.Namespace) -> int:
    from pssync.devstack.run import run_dev

    return run_dev(_data_dir(), story=not args.no_story)


def cmd_demo(args: argparse.Namespace) -> int:
    from pssync.devstack.run import run_demo

    return run_demo(_data_dir())


def cmd_worker(args: argparse.Namespace) -> int:
    from pssync.worker import main

    main()
    return 0


def cmd_ingress(args: argparse.Namespace) -> int:
    from pssync.ingress.__main__ import main

    main()
    return 0


def cmd_feed_start(args: argparse.Namespace) -> int:
    from pssync.operations import ensure_feed_poller
    from pssync.temporal_client import connect_client

    async def go() -> str:
        client = await connect_client(Settings())
        return await ensure_feed_poller(client, Settings(), billing_settle_seconds=args.settle_seconds)

    print(f"feed poller running: {asyncio.run(go())}")
    return 0


def cmd_decide(args: argparse.Namespace) -> int:
    from pssync.temporal_client import connect_client
    from pssync.workflows.time_to_billing import ApprovalDecision, workflow_id

    async def go() -> str:
        client = await connect_client(Settings())
        wf_id = workflow_id(args.project_id, args.period)
        signal = "approve" if args.command == "approve" else "reject"
        await client.get_workflow_handle(wf_id).signal(
            signal, ApprovalDecision(approver=args.by, reason=args.reason)
        )
        return wf_id

    if args.command == "reject" and not args.reason:
        print("a rejection needs --reason", file=sys.stderr)
        return 2
    print(f"{args.command}d {asyncio.run(go())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pssync", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    dev = commands.add_parser("dev", help="run the whole system locally with the demo story (make run)")
    dev.add_argument("--no-story", action="store_true", help="start everything but do not run the story")
    dev.set_defaults(func=cmd_dev)
    commands.add_parser("demo", help="run the story once, print the summary, stop (make demo)").set_defaults(
        func=cmd_demo
    )
    commands.add_parser("worker", help="run a Temporal worker").set_defaults(func=cmd_worker)
    commands.add_parser("ingress", help="run the webhook and approvals API").set_defaults(func=cmd_ingress)

    feed = commands.add_parser("feed", help="the PSA change-feed poller")
    feed_commands = feed.add_subparsers(dest="feed_command", required=True)
    start = feed_commands.add_parser("start", help="start the poller unless it runs")
    start.add_argument("--settle-seconds", type=int, default=300)
    start.set_defaults(func=cmd_feed_start)

    for name in ("approve", "reject"):
        decide = commands.add_parser(name, help=f"{name} an invoice waiting in a billing run")
        decide.add_argument("project_id")
        decide.add_argument("period", help="YYYY-MM")
        decide.add_argument("--by", required=True, help="who decides (recorded in the history)")
        decide.add_argument("--reason")
        decide.set_defaults(func=cmd_decide)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
