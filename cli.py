"""`pssync`: run the worker or the ingress, and act on running processes (approve, exceptions, schedules)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Literal

import worker
from canonical import Money
from config import Settings
from domain.reconcile import render_table
from domain.reconcile_payables import render_payables_table
from ingress.__main__ import main as serve_ingress
from ingress.account_mappings import (
    MappingProblem,
    format_mappings,
    read_mappings,
    remove_mapping,
    set_mapping,
)
from ingress.approvals import ApprovalProblem, decide, read_pending
from ingress.billing_actions import BILL_NOW_ROLES, BillNowProblem, bill_now
from ingress.exceptions_api import ActionProblem, close_item, format_items, request_retry
from ingress.identity import Identity, TokenRefused, verify_token
from ingress.month_end import MonthEndProblem, close_period, format_close, remove_recognition, set_recognition
from ingress.write_off_decisions import WriteOffProblem, read_followed, write_off
from ledger.database import Database
from ledger.errors import InvalidLedgerInput
from ledger.repository import list_exceptions
from runs import time_to_billing
from runs.client import connect_client
from runs.exception_action import ExceptionActionResult
from runs.reconciliation import ReconciliationInput
from runs.reference_sync import ReferenceSyncInput
from runs.schedules import apply_schedules
from runs.starts import ensure_feed_poller, ensure_payment_pollers
from workflows.reconciliation import Reconciliation
from workflows.reference_sync import ReferenceSync


def _data_dir() -> Path:
    return Path(os.environ.get("PSSYNC_DATA_DIR", ".data")).resolve()


def cmd_worker(args: argparse.Namespace) -> int:
    worker.main()
    return 0


def cmd_ingress(args: argparse.Namespace) -> int:
    serve_ingress()
    return 0


def cmd_feed_start(args: argparse.Namespace) -> int:
    async def go() -> list[str]:
        settings = Settings()
        client = await connect_client(settings)
        psa = await ensure_feed_poller(client, settings, billing_settle_seconds=args.settle_seconds)
        return [psa, *await ensure_payment_pollers(client, settings)]

    for poller in asyncio.run(go()):
        print(f"poller running: {poller}")
    return 0


class CliRefused(Exception):
    pass


def _identity(args: argparse.Namespace, settings: Settings, *roles: str, doing: str = "do this") -> Identity:
    """The person acting, from their token (verified as the ingress verifies it), never from a flag."""
    token = args.token or os.environ.get("PSSYNC_TOKEN")
    if not token:
        raise CliRefused("who is acting? pass --token or set PSSYNC_TOKEN")
    try:
        identity = verify_token(settings, token)
    except TokenRefused as refused:
        raise CliRefused(f"token refused: {refused}") from None
    if identity.role not in roles:
        needs = repr(roles[0]) if len(roles) == 1 else f"one of {sorted(roles)}"
        raise CliRefused(f"role {identity.role!r} may not {doing}; needs {needs}")
    return identity


def _pending_text(pending: time_to_billing.PendingApproval) -> str:
    lines = [
        f"{pending.workflow_id}: waiting since {pending.asked_at:%Y-%m-%d %H:%M} UTC "
        f"(reminder {pending.remind_at:%Y-%m-%d}, escalation {pending.escalate_at:%Y-%m-%d})",
        f"  customer {pending.customer}, project {pending.project_id}, entity {pending.legal_entity}, "
        f"period {pending.period}",
        f"  total {pending.total.amount} {pending.total.currency}, version {pending.version}",
        f"  why finance is asked: {pending.reason}",
    ]
    lines += [
        f"    {line.kind:<9} {line.quantity:>8} x {line.unit_amount.amount:>10}  {line.amount.amount:>12}  "
        f"{line.description}"
        for line in pending.lines
    ]
    return "\n".join(lines)


def _total_matches(given: str, total: Money) -> bool:
    amount, _, currency = given.strip().partition(" ")
    try:
        same_amount = Decimal(amount) == total.amount
    except InvalidOperation:
        return False
    return same_amount and currency.strip().upper() in ("", total.currency)


def cmd_decide(args: argparse.Namespace) -> int:
    settings = _stack_settings()
    decision: Literal["approve", "reject"] = "approve" if args.command == "approve" else "reject"
    if decision == "reject" and not (args.reason and args.reason.strip()):
        print("a rejection needs --reason", file=sys.stderr)
        return 2
    try:
        identity = _identity(args, settings, "finance")
    except CliRefused as refused:
        print(refused, file=sys.stderr)
        return 2

    async def go() -> int:
        client = await connect_client(settings)
        wf_id = time_to_billing.workflow_id(args.project_id, args.period)
        pending = await read_pending(client, wf_id)
        if pending is None:
            print(f"nothing is waiting for approval in {wf_id}", file=sys.stderr)
            return 1
        print(_pending_text(pending))
        # The decision is on what was shown: the run refuses it if the invoice changed meanwhile.
        if args.total is not None:
            if not _total_matches(args.total, pending.total):
                print(
                    f"--total {args.total} is not the waiting total {pending.total.amount} "
                    f"{pending.total.currency}: nothing decided",
                    file=sys.stderr,
                )
                return 1
        elif not args.yes:
            print(
                f"to {decision}, repeat with --total {pending.total.amount} (or --yes after reading it)",
                file=sys.stderr,
            )
            return 2
        _, recorded = await decide(
            client,
            project_id=args.project_id,
            period=args.period,
            decision=decision,
            by=identity,
            invoice_version=pending.version,
            expected_total=pending.total,
            reason=args.reason,
        )
        print(f"{recorded.decision} by {recorded.decided_by} (version {recorded.invoice_version}): {wf_id}")
        return 0

    try:
        return asyncio.run(go())
    except ApprovalProblem as problem:
        print(problem, file=sys.stderr)
        return 1


def cmd_write_off(args: argparse.Namespace) -> int:
    settings = _stack_settings()
    try:
        identity = _identity(args, settings, "finance")
    except CliRefused as refused:
        print(refused, file=sys.stderr)
        return 2

    async def go() -> int:
        client = await connect_client(settings)
        followed = await read_followed(client, args.erp, args.invoice_id)
        summary = followed.summary
        if summary is None or summary.amount_due.amount <= 0:
            print(
                f"invoice {args.invoice_id} ({followed.stage}) has nothing due to write off", file=sys.stderr
            )
            return 1
        due = summary.amount_due
        print(
            f"invoice {summary.invoice_number} ({followed.stage}): {summary.total.amount} total, "
            f"{summary.amount_paid.amount} paid, {summary.amount_credited.amount} credited, "
            f"{due.amount} {due.currency} due"
        )
        # The write-off is of what was shown: the run refuses it if a payment changed the amount meanwhile.
        if args.amount is not None:
            if not _total_matches(args.amount, due):
                print(
                    f"--amount {args.amount} is not the amount due {due.amount} {due.currency}: "
                    "nothing written off",
                    file=sys.stderr,
                )
                return 1
        elif not args.yes:
            print(
                f"to write it off, repeat with --amount {due.amount} (or --yes after reading it)",
                file=sys.stderr,
            )
            return 2
        wf_id, accepted = await write_off(
            client,
            erp=args.erp,
            invoice_id=args.invoice_id,
            by=identity,
            reason=args.reason,
            expected_due=due,
        )
        print(
            f"write-off of {accepted.amount_due.amount} {accepted.amount_due.currency} on invoice "
            f"{accepted.invoice_number} requested by {accepted.requested_by}: {wf_id}"
        )
        return 0

    try:
        return asyncio.run(go())
    except WriteOffProblem as problem:
        print(problem, file=sys.stderr)
        return 1


def cmd_bill_now(args: argparse.Namespace) -> int:
    settings = _stack_settings()
    try:
        identity = _identity(args, settings, *BILL_NOW_ROLES, doing="bill now")
    except CliRefused as refused:
        print(refused, file=sys.stderr)
        return 2

    async def go() -> str:
        client = await connect_client(settings)
        database = Database.from_url(settings.database_url)
        try:
            accepted = await bill_now(
                client,
                settings,
                database,
                project_id=args.project_id,
                period=args.period,
                by=identity,
                milestone_id=args.milestone,
            )
        finally:
            database.dispose()
        return accepted.workflow_id

    try:
        wf_id = asyncio.run(go())
    except BillNowProblem as problem:
        print(problem, file=sys.stderr)
        return 1
    print(f"bill now requested by {identity.actor}: {wf_id}")
    return 0


# --- exceptions, reconciliation, reference data and schedules --------------------------------------------


def _stack_settings() -> Settings:
    """Settings from the environment; the ledger defaults to the one `make run` keeps under the data dir."""
    settings = Settings()
    if "PSSYNC_DATABASE_URL" not in os.environ:
        settings = settings.model_copy(update={"database_url": f"sqlite:///{_data_dir() / 'pssync.sqlite'}"})
    return settings


def cmd_exceptions_list(args: argparse.Namespace) -> int:
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
            ReconciliationInput(period=args.period, entities=entities, psa=settings.psa),
            id=f"reconciliation:{args.period}:on-demand-{stamp}",
            task_queue=settings.task_queue,
        )
        print(render_table(result.rows))
        print()
        if result.payables_rows:
            print("Supplier bills:")
            print(render_payables_table(result.payables_rows))
            print()
        if result.in_agreement:
            print(
                f"{result.period}: PSA, ERP and ledger agree ({len(result.rows)} projects, "
                f"{sum(row.erp_bills for row in result.payables_rows)} supplier bills)"
            )
        else:
            print(f"{result.period}: {len(result.differences)} differences, raised as exceptions:")
            for difference in result.differences:
                print(f"  [{difference.owner}] {difference.reason}")
        return 0

    return asyncio.run(go())


def cmd_reference_sync(args: argparse.Namespace) -> int:
    settings = _stack_settings()

    async def go() -> int:
        client = await connect_client(settings)
        result = await client.execute_workflow(
            ReferenceSync.run,
            ReferenceSyncInput(entities=tuple(settings.entities), psa=settings.psa),
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


def cmd_accounts_list(args: argparse.Namespace) -> int:
    settings = _stack_settings()
    database = Database.from_url(settings.database_url)
    try:
        views = read_mappings(database, settings, args.entity)
    except MappingProblem as problem:
        print(problem, file=sys.stderr)
        return 2
    finally:
        database.dispose()
    print(format_mappings(views))
    return 0


def cmd_accounts_change(args: argparse.Namespace) -> int:
    settings = _stack_settings()
    try:
        identity = _identity(args, settings, "finance", doing="change the account mapping")
    except CliRefused as refused:
        print(refused, file=sys.stderr)
        return 2
    database = Database.from_url(settings.database_url)
    try:
        if args.accounts_command == "set":
            view = set_mapping(
                database,
                settings,
                legal_entity=args.entity,
                kind=args.kind,
                key=args.key,
                account_code=args.account,
                cost_account_code=args.cost_account,
                actor=identity.actor,
            )
            done = "set"
        else:
            view = remove_mapping(
                database,
                settings,
                legal_entity=args.entity,
                kind=args.kind,
                key=args.key,
                actor=identity.actor,
            )
            done = "removed"
    except MappingProblem as problem:
        print(problem, file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(f"{done} by {identity.actor}:")
    print(format_mappings([view]))
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    settings = _stack_settings()

    async def go() -> int:
        client = await connect_client(settings)
        try:
            result = await close_period(client, settings, legal_entity=args.entity, period=args.period)
        except MonthEndProblem as problem:
            print(problem, file=sys.stderr)
            return 2
        print(format_close(result))
        return 1 if any(p.outcome != "posted" for p in result.postings) else 0

    return asyncio.run(go())


def cmd_recognition(args: argparse.Namespace) -> int:
    settings = _stack_settings()
    try:
        identity = _identity(args, settings, "finance", doing="change how revenue is recognised")
    except CliRefused as refused:
        print(refused, file=sys.stderr)
        return 2
    database = Database.from_url(settings.database_url)
    try:
        if args.recognition_command == "set":
            record = set_recognition(
                database,
                settings,
                project_id=args.project,
                budget_hours=args.budget_hours,
                actor=identity.actor,
            )
            print(
                f"project {record.project_id}: percentage of completion against {record.budget_hours} budget "
                f"hours, set by {identity.actor}"
            )
        else:
            remove_recognition(database, settings, project_id=args.project, actor=identity.actor)
            print(f"project {args.project}: recognised by milestone acceptance again, by {identity.actor}")
    except MonthEndProblem as problem:
        print(problem, file=sys.stderr)
        return 1
    finally:
        database.dispose()
    return 0


def cmd_schedules_apply(args: argparse.Namespace) -> int:
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

    commands.add_parser("worker", help="run a Temporal worker").set_defaults(func=cmd_worker)
    commands.add_parser("ingress", help="run the webhook and approvals API").set_defaults(func=cmd_ingress)

    feed = commands.add_parser("feed", help="pollers for what vendors do not push: PSA changes, payments")
    feed_commands = feed.add_subparsers(dest="feed_command", required=True)
    start = feed_commands.add_parser("start", help="start the PSA feed and payment pollers unless running")
    start.add_argument("--settle-seconds", type=int, default=300)
    start.set_defaults(func=cmd_feed_start)

    token_help = "your signed token (default: $PSSYNC_TOKEN); the decision is recorded against its person"
    for name in ("approve", "reject"):
        decide_ = commands.add_parser(
            name, help=f"{name} an invoice waiting in a billing run (shows it first)"
        )
        decide_.add_argument("project_id")
        decide_.add_argument("period", help="YYYY-MM")
        decide_.add_argument("--token", help=token_help)
        decide_.add_argument("--total", help="the waiting total you expect, e.g. 1234.50 or '1234.50 GBP'")
        decide_.add_argument("--yes", action="store_true", help="decide on the total shown, without --total")
        decide_.add_argument("--reason", required=name == "reject")
        decide_.set_defaults(func=cmd_decide)

    write_off = commands.add_parser("write-off", help="write off what is still due on a followed invoice")
    write_off.add_argument("erp", help="the ERP that holds the invoice: xero, tryton or netsuite")
    write_off.add_argument("invoice_id", help="the ERP's invoice id")
    write_off.add_argument("--token", help=token_help)
    write_off.add_argument("--reason", required=True, help="written on the credit note")
    write_off.add_argument("--amount", help="the amount due you expect, e.g. 1234.50 or '1234.50 GBP'")
    write_off.add_argument("--yes", action="store_true", help="write off the amount shown, without --amount")
    write_off.set_defaults(func=cmd_write_off)

    bill = commands.add_parser(
        "bill-now", help="bill a project's approved work and completed milestones to date, not at month end"
    )
    bill.add_argument("project_id")
    bill.add_argument("period", help="YYYY-MM (the current month, or an earlier one)")
    bill.add_argument("--token", help="your signed token (default: $PSSYNC_TOKEN); finance or pmo")
    bill.add_argument("--milestone", help="the completed milestone that prompts it (recorded in the audit)")
    bill.set_defaults(func=cmd_bill_now)

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

    accounts = commands.add_parser(
        "accounts", help="finance's account mapping: which account each kind of invoice line books to"
    )
    account_commands = accounts.add_subparsers(dest="accounts_command", required=True)
    account_list = account_commands.add_parser("list", help="the rules, checked against the synced charts")
    account_list.add_argument("--entity", help="one legal entity's rules")
    account_list.set_defaults(func=cmd_accounts_list)
    kinds = "role, service, expense_category, milestone, retainer or journal (month-end's account roles)"
    for name, text in (("set", "create or replace a rule"), ("remove", "remove a rule")):
        change = account_commands.add_parser(name, help=text)
        change.add_argument("entity", help="the legal entity code, e.g. UK")
        change.add_argument("kind", help=kinds)
        change.add_argument("key", help="a role, service code or expense category; * for the kind's default")
        change.add_argument("--token", help="your signed token (default: $PSSYNC_TOKEN); finance")
        if name == "set":
            change.add_argument("--account", required=True, help="the account code lines book to")
            change.add_argument(
                "--cost-account",
                help="expense categories and roles: the cost account bills (for expenses, for "
                "subcontracted time) book to",
            )
        change.set_defaults(func=cmd_accounts_change)

    close = commands.add_parser(
        "close", help="month-end close of an entity's period: posts revenue, WIP and labour-cost journals"
    )
    close.add_argument("--entity", required=True, help="the legal entity code, e.g. UK")
    close.add_argument("--period", required=True, help="YYYY-MM")
    close.set_defaults(func=cmd_close)

    recognition = commands.add_parser(
        "recognition", help="fixed fees: percentage of completion against budget hours, else by milestone"
    )
    recognition_commands = recognition.add_subparsers(dest="recognition_command", required=True)
    recognition_set = recognition_commands.add_parser("set", help="recognise by hours against a budget")
    recognition_set.add_argument("project", help="the PSA project id")
    recognition_set.add_argument("--budget-hours", required=True, help="the hours the fee is budgeted for")
    recognition_set.add_argument("--token", help="your signed token (default: $PSSYNC_TOKEN); finance")
    recognition_set.set_defaults(func=cmd_recognition)
    recognition_remove = recognition_commands.add_parser("remove", help="back to milestone acceptance")
    recognition_remove.add_argument("project", help="the PSA project id")
    recognition_remove.add_argument("--token", help="your signed token (default: $PSSYNC_TOKEN); finance")
    recognition_remove.set_defaults(func=cmd_recognition)

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
