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


def cmd_bench(args: argparse.Namespace) -> int:
    from bench.cli import run_from_args

    return run_from_args(args)


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    try:
        from bench.options import DESCRIPTION, add_arguments
    except ImportError:  # an installation without the benchmark package
        return
    bench = commands.add_parser("bench", help="run the benchmark and publish its table (make bench)")
    bench.description = DESCRIPTION
    add_arguments(bench)
    bench.set_defaults(func=cmd_bench)


def cmd_feed_start(args: argparse.Namespace) -> int:
    from pssync.operations import ensure_feed_poller, ensure_payment_pollers
    from pssync.temporal_client import connect_client

    async def go() -> list[str]:
        settings = Settings()
        client = await connect_client(settings)
        psa = await ensure_feed_poller(client, settings, billing_settle_seconds=args.settle_seconds)
        return [psa, *await ensure_payment_pollers(client, settings)]

    for poller in asyncio.run(go()):
        print(f"poller running: {poller}")
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


def cmd_write_off(args: argparse.Namespace) -> int:
    from pssync.temporal_client import connect_client
    from pssync.workflows.invoice_to_cash import WriteOffRequest, workflow_id

    async def go() -> str:
        client = await connect_client(Settings())
        wf_id = workflow_id(args.erp, args.invoice_id)
        await client.get_workflow_handle(wf_id).signal(
            "write_off", WriteOffRequest(actor=args.by, reason=args.reason)
        )
        return wf_id

    print(f"write-off requested: {asyncio.run(go())}")
    return 0


# --- exceptions, reconciliation, reference data and schedules --------------------------------------------


def _stack_settings() -> Settings:
    """Settings from the environment; the ledger defaults to the one `make run` keeps under the data dir."""
    settings = Settings()
    if "PSSYNC_DATABASE_URL" not in os.environ:
        settings = settings.model_copy(update={"database_url": f"sqlite:///{_data_dir() / 'pssync.sqlite'}"})
    return settings


def cmd_exceptions_list(args: argparse.Namespace) -> int:
    from pssync.ingress.exceptions_api import format_items
    from pssync.ledger.database import Database
    from pssync.ledger.errors import InvalidLedgerInput
    from pssync.ledger.repository import list_exceptions

    database = Database.from_url(_stack_settings().database_url)
    try:
        with database.session(read_only=True) as session:
            items = list_exceptions(
                session, owner=args.owner, status=args.status, process=args.process, limit=args.limit
            )
    except InvalidLedgerInput as error:
        print(error, file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(format_items(items))
    return 0


def cmd_exceptions_act(args: argparse.Namespace) -> int:
    from pssync.ingress.exceptions_api import ActionProblem, close_item, request_retry
    from pssync.ledger.database import Database
    from pssync.temporal_client import connect_client
    from pssync.workflows.exceptions import ExceptionActionResult

    settings = _stack_settings()
    corrections: dict[str, str] | None = None
    if args.exceptions_command == "fix":
        corrections = {}
        for pair in args.set:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                print(f"--set takes field=value, got {pair!r}", file=sys.stderr)
                return 2
            corrections[name] = value

    async def go() -> str:
        database = Database.from_url(settings.database_url)
        try:
            if args.exceptions_command in ("skip", "resolve"):
                item = await close_item(
                    database,
                    exception_id=args.exception_id,
                    action=args.exceptions_command,
                    actor=args.by,
                    note=args.reason if args.exceptions_command == "skip" else args.note,
                )
                return f"exception {item.id} {item.status}"
            client = await connect_client(settings)
            started = await request_retry(
                database,
                client,
                settings,
                exception_id=args.exception_id,
                actor=args.by,
                note=args.note,
                corrected_fields=corrections,
            )
            message = f"exception {started.item.id} {started.item.status}: {started.workflow_id}"
            if args.wait:
                handle = client.get_workflow_handle(started.workflow_id, result_type=ExceptionActionResult)
                result = await handle.result()
                message += f"\n{result.outcome}: {result.detail}"
            return message
        finally:
            database.dispose()

    try:
        print(asyncio.run(go()))
    except ActionProblem as problem:
        print(problem, file=sys.stderr)
        for item in problem.problems:
            print(f"  {item['field']}: {item['message']}", file=sys.stderr)
        return 1
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pssync.domain.reconcile import render_table
    from pssync.temporal_client import connect_client
    from pssync.workflows.reconciliation import Reconciliation, ReconciliationInput

    settings = _stack_settings()
    entities = tuple(e for e in settings.entities if not args.entity or e.code in args.entity)
    if not entities:
        print(f"no configured entity among {args.entity}", file=sys.stderr)
        return 2

    async def go() -> int:
        client = await connect_client(settings)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        result = await client.execute_workflow(
            Reconciliation.run,
            ReconciliationInput(period=args.period, entities=entities),
            id=f"reconciliation:{args.period}:on-demand-{stamp}",
            task_queue=settings.task_queue,
        )
        print(render_table(result.rows))
        print()
        if result.in_agreement:
            print(f"{result.period}: PSA, ERP and ledger agree ({len(result.rows)} projects)")
        else:
            print(f"{result.period}: {len(result.differences)} differences, raised as exceptions:")
            for difference in result.differences:
                print(f"  [{difference.owner}] {difference.reason}")
        return 0

    return asyncio.run(go())


def cmd_reference_sync(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from pssync.temporal_client import connect_client
    from pssync.workflows.reference_sync import ReferenceSync, ReferenceSyncInput

    settings = _stack_settings()

    async def go() -> int:
        client = await connect_client(settings)
        result = await client.execute_workflow(
            ReferenceSync.run,
            ReferenceSyncInput(entities=tuple(settings.entities)),
            id=f"reference-sync:on-demand-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}",
            task_queue=settings.task_queue,
        )
        for erp in result.erps:
            counts = ", ".join(
                f"{name} {w.inserted}+{w.updated}~{w.deactivated}-" for name, w in erp.written.items()
            )
            print(f"{erp.erp}: base {erp.base_currency}; {counts} (inserted+ updated~ deactivated-)")
        if result.psa:
            print(
                f"{result.psa.psa}: {result.psa.employees} employees, {len(result.psa.without_cost_rate)} "
                "without a cost rate"
            )
        for gap in result.gaps:
            print(f"gap: {gap.reason}")
        for failure in result.failures:
            print(f"failed: {failure.system}: {failure.reason}", file=sys.stderr)
        return 1 if result.failures else 0

    return asyncio.run(go())


def cmd_schedules_apply(args: argparse.Namespace) -> int:
    from pssync.schedules import apply_schedules
    from pssync.temporal_client import connect_client

    settings = _stack_settings()

    async def go() -> None:
        client = await connect_client(settings)
        for applied in await apply_schedules(client, settings):
            print(f"{applied.outcome}: {applied.schedule_id} ({applied.description})")

    asyncio.run(go())
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
    _add_bench(commands)

    feed = commands.add_parser("feed", help="pollers for what vendors do not push: PSA changes, payments")
    feed_commands = feed.add_subparsers(dest="feed_command", required=True)
    start = feed_commands.add_parser("start", help="start the PSA feed and payment pollers unless running")
    start.add_argument("--settle-seconds", type=int, default=300)
    start.set_defaults(func=cmd_feed_start)

    for name in ("approve", "reject"):
        decide = commands.add_parser(name, help=f"{name} an invoice waiting in a billing run")
        decide.add_argument("project_id")
        decide.add_argument("period", help="YYYY-MM")
        decide.add_argument("--by", required=True, help="who decides (recorded in the history)")
        decide.add_argument("--reason")
        decide.set_defaults(func=cmd_decide)

    write_off = commands.add_parser("write-off", help="write off what is still due on a followed invoice")
    write_off.add_argument("erp", help="xero or tryton")
    write_off.add_argument("invoice_id", help="the ERP's invoice id")
    write_off.add_argument("--by", required=True, help="who writes it off (recorded in the history)")
    write_off.add_argument("--reason", required=True)
    write_off.set_defaults(func=cmd_write_off)

    exceptions = commands.add_parser(
        "exceptions", help="the exceptions queue: list, retry, fix, skip, resolve"
    )
    exception_commands = exceptions.add_subparsers(dest="exceptions_command", required=True)
    listing = exception_commands.add_parser("list", help="items, oldest first")
    listing.add_argument("--owner", help="finance, pmo, sales_ops, hr_ops or integration_support")
    listing.add_argument("--status", help="open, retrying, skipped or resolved")
    listing.add_argument("--process", help="e.g. opportunity_to_project, time_to_billing, reconciliation")
    listing.add_argument("--limit", type=int, default=200)
    listing.set_defaults(func=cmd_exceptions_list)
    for name, text in (
        ("retry", "retry the process that raised the item"),
        ("fix", "write corrected fields to the source system, then retry"),
        ("skip", "leave the record as it is (a reason is required)"),
        ("resolve", "mark the item dealt with"),
    ):
        act = exception_commands.add_parser(name, help=text)
        act.add_argument("exception_id", type=int)
        act.add_argument("--by", required=True, help="who acts (recorded on the item)")
        if name == "skip":
            act.add_argument("--reason", required=True, help="why the record may be skipped")
        else:
            act.add_argument("--note")
        if name == "fix":
            act.add_argument(
                "--set",
                action="append",
                required=True,
                metavar="FIELD=VALUE",
                help="a corrected field (repeat)",
            )
        if name in ("retry", "fix"):
            act.add_argument("--wait", action="store_true", help="wait until the retried run settles")
        act.set_defaults(func=cmd_exceptions_act)

    reconcile = commands.add_parser(
        "reconcile", help="PSA against ERP and ledger for a period; prints the table"
    )
    reconcile.add_argument("--period", required=True, help="YYYY-MM")
    reconcile.add_argument("--entity", action="append", help="a legal entity code (repeat); default: all")
    reconcile.set_defaults(func=cmd_reconcile)

    reference = commands.add_parser("reference", help="reference data from the ERPs and the PSA")
    reference_commands = reference.add_subparsers(dest="reference_command", required=True)
    reference_commands.add_parser("sync", help="run ReferenceSync now").set_defaults(func=cmd_reference_sync)

    schedules = commands.add_parser("schedules", help="the Temporal Schedules ps-sync runs by")
    schedule_commands = schedules.add_subparsers(dest="schedules_command", required=True)
    schedule_commands.add_parser("apply", help="create or update them (idempotent)").set_defaults(
        func=cmd_schedules_apply
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))


if __name__ == "__main__":
    main()
