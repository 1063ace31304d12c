"""The ops page (`GET /ops`): business metrics on one server-rendered page, runs linked to the Temporal UI.

- Approved time not yet billed: as the latest reconciliation found it (per entity, count and value at PSA
  rates), and the billing runs still collecting or settling.
- Invoices awaiting finance's approval or their posting: running TimeToBilling runs by SyncStage (Temporal
  visibility), with the business keys from their search attributes.
- Vendors failing: the open vendor-trouble incidents (`activities.vendor_trouble`), first and in red.
- Every listed run retrying a call says so: which activity, on which attempt, since when and its last error
  (Temporal's description of the run, as `ingress.run_status` reads it).
- Exceptions by owner and age, and the oldest items waiting.

The people-facing workspace (`ingress.workspace`: approval inbox, exception workspace, business health)
links here for this detail, and this page links to it.

A browser cannot send a bearer token, so besides `Authorization: Bearer <token>` the page accepts HTTP Basic
with the token as the password (any user name): the browser asks for it once (`ingress.viewers`).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from html import escape

import structlog
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from temporalio.client import Client, WorkflowExecution

from activities.vendor_incidents import PROCESS as VENDOR_TROUBLE
from activities.vendor_incidents import IncidentRecord, incident_record
from canonical import Money
from config import Settings
from ingress.exceptions_api import ledger, temporal_link
from ingress.run_status import DESCRIBE_TIMEOUT, pending_calls, retrying_text
from ingress.viewers import page_reader
from ingress.workspace.labels import OWNERS, PROCESSES, STAGES, STATUSES, readable
from ledger.column_types import utc_now
from ledger.database import Database
from ledger.month_end import (
    MonthEndJournalRecord,
    MonthEndPositionRecord,
    latest_month_end_journals,
    latest_positions,
)
from ledger.records import ExceptionItem, OwnerExceptionSummary
from ledger.repository import exception_counts_by_owner, list_exceptions
from ledger.vocab import ExceptionStatus
from runs import search_attributes as sa
from workflows.reconciliation import ReconciliationResult

log = structlog.get_logger("ingress.ops_page")

router = APIRouter()

AWAITING_APPROVAL = ("awaiting_approval", "approval_reminded", "approval_escalated")
AWAITING_POSTING = ("posting", "posting_rejected")
NOT_YET_BILLED = ("waiting_for_period_close", "settling", "collecting", "deferred")
WAITING_ITEMS_SHOWN = 50
MONTH_END_JOURNALS_SHOWN = 12
RUNS_SHOWN = 200
# Temporal describes one run per call: the listed runs are described this many at a time.
DESCRIBES_AT_ONCE = 8
FAILING_VENDORS_SHOWN = 50
RUNS_NAMED_PER_VENDOR = 5


@dataclass
class RunRow:
    workflow_id: str
    stage: str
    project_id: str
    period: str
    entity: str
    started: datetime | None
    # "retrying <activity> (attempt N since HH:MM UTC): <last error>", when it waits on a failing call.
    retrying: str | None = None


@dataclass
class FailingVendor:
    item: ExceptionItem
    # None when the item's record is not an incident's (edited by hand): its reason still says it all.
    incident: IncidentRecord | None


@dataclass
class Unbilled:
    period: str | None = None
    as_of: datetime | None = None
    by_entity: dict[str, dict[str, tuple[int, Decimal]]] = field(default_factory=dict)
    error: str | None = None


@dataclass
class OpsFacts:
    summaries: dict[str, OwnerExceptionSummary]
    waiting: list[ExceptionItem]
    failing_vendors: list[FailingVendor] = field(default_factory=list)
    awaiting_approval: list[RunRow] = field(default_factory=list)
    awaiting_posting: list[RunRow] = field(default_factory=list)
    collecting: list[RunRow] = field(default_factory=list)
    unbilled: Unbilled = field(default_factory=Unbilled)
    # The month-end journals posted last, newest first.
    month_end: list[MonthEndJournalRecord] = field(default_factory=list)
    # Each project's figures to date as the latest closes left them, newest first.
    margins: list[MonthEndPositionRecord] = field(default_factory=list)
    temporal_error: str | None = None


def _keyword(run: WorkflowExecution, key: object) -> str:
    value = run.typed_search_attributes.get(key)  # type: ignore[call-overload]
    return str(value) if value is not None else ""


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{value}'" for value in values)


async def _billing_runs(client: Client, task_queue: str, stages: tuple[str, ...]) -> list[RunRow]:
    query = (
        f"WorkflowType = 'TimeToBilling' AND ExecutionStatus = 'Running' AND TaskQueue = '{task_queue}' "
        f"AND SyncStage IN ({_quoted(stages)})"
    )
    rows = []
    async for run in client.list_workflows(query, limit=RUNS_SHOWN):
        rows.append(
            RunRow(
                workflow_id=run.id,
                stage=_keyword(run, sa.SYNC_STAGE),
                project_id=_keyword(run, sa.PROJECT_ID),
                period=_keyword(run, sa.BILLING_PERIOD),
                entity=_keyword(run, sa.LEGAL_ENTITY),
                started=run.start_time,
            )
        )
    return rows


async def _latest_unbilled(client: Client, task_queue: str) -> Unbilled:
    query = (
        f"WorkflowType = 'Reconciliation' AND ExecutionStatus = 'Completed' AND TaskQueue = '{task_queue}'"
    )
    async for run in client.list_workflows(query, limit=1):
        result = await client.get_workflow_handle(
            run.id, run_id=run.run_id, result_type=ReconciliationResult
        ).result()
        totals: dict[str, dict[str, tuple[int, Decimal]]] = defaultdict(dict)
        for row in result.rows:
            count, amount = totals[row.legal_entity].get(row.currency, (0, Decimal(0)))
            totals[row.legal_entity][row.currency] = (
                count + row.unbilled_count,
                amount + row.unbilled_amount,
            )
        return Unbilled(period=result.period, as_of=run.close_time, by_entity=dict(totals))
    return Unbilled()


async def _mark_retrying(client: Client, rows: list[RunRow]) -> None:
    """Note on each row the call its run retries the longest, if any, as Temporal describes the run."""
    turns = asyncio.Semaphore(DESCRIBES_AT_ONCE)

    async def mark(row: RunRow) -> None:
        async with turns:
            try:
                handle = client.get_workflow_handle(row.workflow_id)
                calls = await pending_calls(client, await handle.describe(rpc_timeout=DESCRIBE_TIMEOUT))
            except Exception as error:  # a run that ended since it was listed: nothing to add
                log.info("run_not_described", workflow_id=row.workflow_id, error=type(error).__name__)
                return
        retrying = [call for call in calls if call.retrying]
        if retrying:
            row.retrying = retrying_text(max(retrying, key=lambda call: call.attempt))

    await asyncio.gather(*(mark(row) for row in rows))


def _failing_vendors(database: Database) -> list[FailingVendor]:
    with database.session(read_only=True) as session:
        items = list_exceptions(
            session, process=VENDOR_TROUBLE, status=ExceptionStatus.OPEN, limit=FAILING_VENDORS_SHOWN
        )
    return [FailingVendor(item=item, incident=incident_record(item)) for item in items]


def _latest_month_end(
    database: Database,
) -> tuple[list[MonthEndJournalRecord], list[MonthEndPositionRecord]]:
    with database.session(read_only=True) as session:
        return (
            latest_month_end_journals(session, limit=MONTH_END_JOURNALS_SHOWN),
            latest_positions(session, limit=MONTH_END_JOURNALS_SHOWN),
        )


def _margins_html(positions: list[MonthEndPositionRecord]) -> str:
    def amount(money: Money) -> str:
        return escape(f"{money.amount:,.2f}")

    return _table(
        ["entity", "period", "project", "currency", "revenue", "labour cost", "billed", "WIP", "margin"],
        [
            [
                escape(p.legal_entity),
                escape(p.period),
                escape(p.project_id),
                escape(p.margin.currency),
                amount(p.margin.revenue),
                amount(p.margin.labour_cost),
                amount(p.margin.billed),
                amount(p.margin.wip),
                amount(p.margin.margin),
            ]
            for p in positions
        ],
        "no project has been closed yet",
    )


def _month_end_html(journals: list[MonthEndJournalRecord]) -> str:
    return _table(
        ["entity", "period", "journal", "reference", "projects", "debits", "ERP journal", "posted"],
        [
            [
                escape(j.legal_entity),
                escape(j.period),
                escape(j.kind.value.replace("_", " ")),
                escape(j.reference),
                str(len(j.journals)),
                escape(f"{j.total_debits.amount:,.2f} {j.total_debits.currency}"),
                escape(f"{j.erp} {j.journal_id}"),
                escape(j.posted_at.isoformat(timespec="minutes")),
            ]
            for j in journals
        ],
        "no month-end close has posted yet (pssync close --entity UK --period YYYY-MM)",
    )


async def gather(database: Database, client: Client, settings: Settings) -> OpsFacts:
    def read_ledger() -> tuple[dict[str, OwnerExceptionSummary], list[ExceptionItem]]:
        with database.session(read_only=True) as session:
            summaries = {owner.value: s for owner, s in exception_counts_by_owner(session).items()}
            waiting = [
                *list_exceptions(session, status=ExceptionStatus.OPEN, limit=WAITING_ITEMS_SHOWN),
                *list_exceptions(session, status=ExceptionStatus.RETRYING, limit=WAITING_ITEMS_SHOWN),
            ]
        waiting.sort(key=lambda item: item.created_at)
        return summaries, waiting[:WAITING_ITEMS_SHOWN]

    summaries, waiting = await asyncio.to_thread(read_ledger)
    facts = OpsFacts(summaries=summaries, waiting=waiting)
    facts.failing_vendors = await asyncio.to_thread(_failing_vendors, database)
    facts.month_end, facts.margins = await asyncio.to_thread(_latest_month_end, database)
    try:
        facts.awaiting_approval = await _billing_runs(client, settings.task_queue, AWAITING_APPROVAL)
        facts.awaiting_posting = await _billing_runs(client, settings.task_queue, AWAITING_POSTING)
        facts.collecting = await _billing_runs(client, settings.task_queue, NOT_YET_BILLED)
    except Exception as error:  # the page must still show the ledger's half when Temporal is down
        facts.temporal_error = str(error)
    else:
        await _mark_retrying(client, [*facts.awaiting_approval, *facts.awaiting_posting, *facts.collecting])
    try:
        facts.unbilled = await _latest_unbilled(client, settings.task_queue)
    except Exception as error:
        facts.unbilled = Unbilled(error=str(error))
    return facts


# --- rendering --------------------------------------------------------------------------------------------


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds // 86400} d {seconds % 86400 // 3600} h"
    if seconds >= 3600:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 60} min"


def _link(settings: Settings, workflow_id: str | None) -> str:
    url = temporal_link(settings, workflow_id)
    if url is None or workflow_id is None:
        return "—"
    return f'<a href="{escape(url)}">{escape(workflow_id)}</a>'


def _table(headers: list[str], rows: list[list[str]], empty: str) -> str:
    if not rows:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _runs(settings: Settings, runs: list[RunRow], now: datetime, empty: str) -> str:
    return _table(
        ["run", "stage", "entity", "project", "period", "running for", "waiting on"],
        [
            [
                _link(settings, run.workflow_id),
                escape(readable(STAGES, run.stage)),
                escape(run.entity),
                escape(run.project_id),
                escape(run.period),
                _age(now - run.started) if run.started else "—",
                f'<span class="warn">{escape(run.retrying)}</span>' if run.retrying else "—",
            ]
            for run in runs
        ],
        empty,
    )


def _failing_vendors_html(settings: Settings, failing: list[FailingVendor], now: datetime) -> str:
    rows = []
    for vendor in failing:
        incident = vendor.incident
        if incident is None:
            rows.append(
                [escape(vendor.item.dedupe_key), "—", "—", "—", "—", escape(vendor.item.reason[:240]), "—"]
            )
            continue
        status = f"{incident.status_code} " if incident.status_code is not None else ""
        named = incident.runs[:RUNS_NAMED_PER_VENDOR]
        runs = ", ".join(_link(settings, run) for run in named)
        if len(incident.runs) > len(named) or incident.more_runs:
            runs += " …"
        rows.append(
            [
                f"<strong>{escape(incident.vendor)}</strong>",
                escape(incident.operation),
                f"{escape(incident.since.strftime('%Y-%m-%d %H:%M'))} UTC ({_age(now - incident.since)})",
                f"{incident.failed_attempts} (longest call on attempt {incident.highest_attempt})",
                f"{escape(incident.affected_runs)}: {runs}" if runs else escape(incident.affected_runs),
                f'<span class="warn">{escape(status + incident.error_type)}: '
                f"{escape(incident.last_error[:240])}</span>",
                str(vendor.item.id),
            ]
        )
    return _table(
        [
            "vendor",
            "operation",
            "failing since",
            "failed attempts",
            "runs waiting",
            "last error",
            "exception",
        ],
        rows,
        "every vendor answers",
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1d2733}h1{margin-bottom:.2rem}
h2{margin-top:2rem;border-bottom:1px solid #d5dbe3;padding-bottom:.3rem}
table{border-collapse:collapse;margin:.5rem 0}td,th{padding:.3rem .8rem;border-bottom:1px solid #e6eaef;
text-align:left;vertical-align:top}th{background:#f3f5f8}.muted,.empty{color:#6b7785}.warn{color:#a8071a}
.figure{font-size:1.6rem;font-weight:600;margin-right:1.5rem}
"""


def render(facts: OpsFacts, settings: Settings, now: datetime) -> str:
    owners = _table(
        ["owner", "open", "retrying", "skipped", "resolved", "oldest waiting"],
        [
            [
                escape(readable(OWNERS, owner)),
                str(s.by_status[ExceptionStatus.OPEN]),
                str(s.by_status[ExceptionStatus.RETRYING]),
                str(s.by_status[ExceptionStatus.SKIPPED]),
                str(s.by_status[ExceptionStatus.RESOLVED]),
                _age(now - s.oldest_waiting_since) if s.oldest_waiting_since else "—",
            ]
            for owner, s in sorted(facts.summaries.items())
        ],
        "no exception owners",
    )
    waiting = _table(
        ["id", "owner", "process", "status", "age", "attempts", "reason", "run"],
        [
            [
                str(item.id),
                escape(readable(OWNERS, item.owner)),
                escape(readable(PROCESSES, item.process)),
                escape(readable(STATUSES, item.status)),
                _age(item.age(now)),
                str(item.attempts),
                escape(item.reason[:240]),
                _link(settings, item.workflow_id),
            ]
            for item in facts.waiting
        ],
        "nothing is waiting for a person",
    )
    unbilled = facts.unbilled
    if unbilled.error:
        unbilled_html = f'<p class="warn">last reconciliation unreadable: {escape(unbilled.error)}</p>'
    elif unbilled.period is None:
        unbilled_html = (
            '<p class="empty">no reconciliation has run yet (pssync reconcile --period YYYY-MM)</p>'
        )
    else:
        as_of = unbilled.as_of.isoformat(timespec="minutes") if unbilled.as_of else "?"
        unbilled_html = (
            f'<p class="muted">as the reconciliation of {escape(unbilled.period)} found it ({as_of})</p>'
        )
        unbilled_html += _table(
            ["entity", "currency", "approved entries not billed", "value at PSA rates"],
            [
                [escape(entity), escape(currency), str(count), escape(f"{amount:,.2f}")]
                for entity, by_currency in sorted(unbilled.by_entity.items())
                for currency, (count, amount) in sorted(by_currency.items())
            ],
            "all approved work of the period is billed",
        )
    temporal_note = (
        f'<p class="warn">Temporal visibility unavailable: {escape(facts.temporal_error)}</p>'
        if facts.temporal_error
        else ""
    )
    waiting_total = sum(s.waiting for s in facts.summaries.values())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ps-sync ops</title><style>{STYLE}</style></head>
<body>
<h1>ps-sync operations</h1>
<p class="muted">{escape(now.isoformat(timespec="seconds"))} · task queue {escape(settings.task_queue)} ·
<a href="{escape(settings.temporal_ui_url)}">Temporal UI</a> ·
<a href="/workspace/health">business health</a> · <a href="/workspace/inbox">approval inbox</a> ·
<a href="/workspace/exceptions">exception workspace</a></p>
<p><span class="figure">{len(facts.awaiting_approval)}</span> invoices awaiting approval
<span class="figure">{len(facts.awaiting_posting)}</span> awaiting posting
<span class="figure">{len(facts.collecting)}</span> billing runs collecting
<span class="figure">{waiting_total}</span> exceptions waiting
<span class="figure{" warn" if facts.failing_vendors else ""}">{len(facts.failing_vendors)}</span>
vendor calls failing</p>
{temporal_note}
<h2{' class="warn"' if facts.failing_vendors else ""}>Vendors failing</h2>
{_failing_vendors_html(settings, facts.failing_vendors, now)}
<h2>Approved time not yet billed</h2>
{unbilled_html}
<h3>Billing runs not yet at the invoice</h3>
{_runs(settings, facts.collecting, now, "no billing run is collecting or settling")}
<h2>Invoices awaiting approval</h2>
{_runs(settings, facts.awaiting_approval, now, "no invoice waits for finance")}
<h2>Invoices awaiting posting</h2>
{_runs(settings, facts.awaiting_posting, now, "no invoice waits to be posted")}
<h2>Month-end</h2>
{_month_end_html(facts.month_end)}
<h3>Margin by project, to date</h3>
{_margins_html(facts.margins)}
<h2>Exceptions by owner</h2>
{owners}
<h2>Waiting the longest</h2>
{waiting}
</body></html>
"""


@router.get("/ops", response_class=HTMLResponse)
async def ops_page(
    request: Request, database: Database = Depends(ledger), _: str = Depends(page_reader)
) -> HTMLResponse:
    settings: Settings = request.app.state.settings
    facts = await gather(database, request.app.state.temporal, settings)
    return HTMLResponse(render(facts, settings, utc_now()))
