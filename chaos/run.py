"""One chaos run, start to end: the stack up, faults on, the deals played through the disruptions, faults
off, everything settled, reconciliation, the audit of source against target, the table, the stack down."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import Client

from chaos.audit import Auditor, AuditResult
from chaos.disruptions import Disruptions
from chaos.options import ChaosOptions
from chaos.report import ChaosOutcome
from chaos.schedule import QUIET, Schedule, plan
from chaos.temporal_waits import Runs, RunStuck
from chaos.vendors import Vendors
from chaos.workload import Deal, Workload, make_deals
from chaos.world import ChaosWorld, start_world
from config import Settings
from devstack.story import Story, previous_period
from runs.client import connect_client
from runs.psa_feed import PsaFeedPollerStatus
from runs.psa_feed import workflow_id as feed_id
from runs.reconciliation import ReconciliationInput
from runs.starts import ensure_feed_poller, ensure_payment_pollers, start_reconciliation
from workflows.reconciliation import ReconciliationResult

RECONCILE_SECONDS = 180.0


def run_chaos(options: ChaosOptions, say: Callable[[str], None]) -> ChaosOutcome:
    """The whole run; the stack is stopped (and a temporary data directory removed) whatever happens."""
    began = time.monotonic()
    started_at = datetime.now(UTC)
    temporary = options.data_dir is None
    data_dir = options.data_dir or Path(tempfile.mkdtemp(prefix="pssync-chaos-"))
    if not temporary and data_dir.exists() and any(data_dir.iterdir()):
        # The audit counts every project, customer and invoice the vendors hold as this run's own.
        raise ValueError(f"{data_dir} is not empty: a chaos run starts from nothing")
    schedule = plan(options)
    say(f"chaos: seed {options.seed}, data in {data_dir}")
    say(
        f"chaos: Temporal restarts at {list(schedule.temporal_restarts)} s, outages "
        f"{[(o.vendor, o.at, o.seconds) for o in schedule.outages]}, {options.worker_kills} worker kills"
    )
    world: ChaosWorld | None = None
    try:
        world = start_world(data_dir, workers=options.workers, say=say)
        outcome = asyncio.run(_drive(world, options, schedule, say))
    except Exception as err:
        # A run that could not even be driven to its end fails with what happened, not with a table of zeros.
        outcome = _failed(options, started_at, f"{type(err).__name__}: {err}")
        say(traceback.format_exc())
    finally:
        if world is not None:
            world.stop()
        if temporary and not options.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)
    outcome.wall_seconds = time.monotonic() - began
    return outcome


def _failed(options: ChaosOptions, started_at: datetime, failure: str) -> ChaosOutcome:
    return ChaosOutcome(
        options=options,
        started_at=started_at,
        wall_seconds=0.0,
        deals=[],
        injected={},
        outages=[],
        kills=[],
        restarts=[],
        audit=AuditResult(),
        reconciliation_findings=[],
        reconciliation_rows=0,
        failure=failure,
    )


async def _drive(
    world: ChaosWorld, options: ChaosOptions, schedule: Schedule, say: Callable[[str], None]
) -> ChaosOutcome:
    started_at = datetime.now(UTC)
    settings = world.stack.settings
    client = await connect_client(settings)
    runs = Runs(client)
    vendors = Vendors(world.vendor_urls())
    config = world.config
    await ensure_feed_poller(
        client,
        settings,
        billing_settle_seconds=config.billing_settle_seconds,
        invoice_poll_interval_seconds=config.invoice_poll_interval_seconds,
    )
    await ensure_payment_pollers(client, settings)
    story = Story(
        settings, client, say=say if options.verbose else lambda _: None, step_seconds=options.deal_seconds
    )
    await story.prepare()
    period = previous_period(started_at.date())
    deals = make_deals(schedule.deal_entities, schedule.deal_days)
    disruptions = Disruptions(world, vendors, runs, schedule, options, say)
    workload = Workload(
        settings,
        runs,
        story,
        period=period,
        deal_seconds=options.deal_seconds,
        say=say if options.verbose else lambda _: None,
        billing_started=disruptions.billing_started,
        billing_finished=disruptions.billing_finished,
    )
    supervising = asyncio.create_task(disruptions.supervise())
    try:
        await vendors.set_all(schedule.faults)
        say(f"chaos: faults on; playing {len(deals)} deals, {options.parallel} at a time, period {period}")
        disrupting = asyncio.create_task(disruptions.run())
        playing = asyncio.create_task(workload.play_all(deals, options.parallel))
        await _until_first_done(playing, disrupting, supervising)
        if not disrupting.done():
            say("chaos: the deals are done; disruptions still scheduled are called off")
            disrupting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await disrupting
        await vendors.set_all({vendor: QUIET for vendor in schedule.faults})
        say("chaos: faults off; letting everything settle")
        problems = await _settle(world, runs, vendors, deals, settings.psa, options.settle_seconds)
        findings, rows = await _reconcile(client, runs, settings, period.value)
        auditor = Auditor(settings, runs, period)
        try:
            audit = await auditor.audit(deals)
        finally:
            await auditor.aclose()
        injected = await vendors.injected()
    finally:
        supervising.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await supervising
        await vendors.aclose()
    return ChaosOutcome(
        options=options,
        started_at=started_at,
        wall_seconds=0.0,
        deals=deals,
        injected=injected,
        outages=disruptions.outages,
        kills=world.kills,
        restarts=world.restarts,
        audit=audit,
        reconciliation_findings=findings,
        reconciliation_rows=rows,
        settle_problems=problems,
        ports=world.ports,
    )


async def _until_first_done(playing: asyncio.Task[None], *watchers: asyncio.Task[None]) -> None:
    """Wait for the workload; a disruption or the supervisor failing (not just ending) ends the run."""
    pending = {playing, *watchers}
    while not playing.done():
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task is not playing and task.exception() is not None:
                playing.cancel()
                raise task.exception()  # type: ignore[misc]
    playing.result()


async def _settle(
    world: ChaosWorld, runs: Runs, vendors: Vendors, deals: list[Deal], psa: str, seconds: float
) -> list[str]:
    """Temporal and both workers up, the feed read to its end, every outbound message and webhook
    delivered. What does not settle in time is reported, never waited out silently."""
    deadline = time.monotonic() + seconds
    problems = []
    while not (await asyncio.to_thread(world.temporal_answers)) or not all(
        w.alive() for w in world.workers()
    ):
        if time.monotonic() > deadline:
            problems.append("Temporal or a worker was not back up when the run settled")
            break
        await asyncio.sleep(0.5)
    caught_up = False
    while time.monotonic() < deadline:
        try:
            status = await runs.query(feed_id(psa), "status", deadline, result_type=PsaFeedPollerStatus)
        except RunStuck:
            break
        outbound = (await vendors.stats("salesforce")).get("outbound", {})
        if status.waiting and not outbound.get("pending"):
            caught_up = True
            break
        await asyncio.sleep(1.0)
    if not caught_up:
        problems.append(
            "the feed poller or Salesforce's outbound queue had not caught up when the run settled"
        )
    webhooks = await vendors.flush_webhooks()
    if webhooks.get("pending") or webhooks.get("in_delivery"):
        problems.append(f"Xero webhooks still undelivered: {webhooks}")
    return problems


async def _reconcile(client: Client, runs: Runs, settings: Settings, period: str) -> tuple[list[str], int]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    workflow_id = f"reconciliation:{period}:chaos-{stamp}"
    await start_reconciliation(
        client,
        task_queue=settings.task_queue,
        workflow_id=workflow_id,
        # Approved work still unbilled now counts: the chaos run waits for nothing to be billed later.
        input=ReconciliationInput(
            entities=tuple(settings.entities), period=period, psa=settings.psa, unbilled_grace_days=0
        ),
    )
    result = await runs.completed_result(
        workflow_id, ReconciliationResult, time.monotonic() + RECONCILE_SECONDS
    )
    return [f"[{d.owner}] {d.reason}" for d in result.differences], len(result.rows)
