"""Driving ps-sync the way its users do, and timing it from Temporal's own records.

Deals are closed in Salesforce (its outbound message reaches the ingress, which starts
OpportunityToProject); time is approved in Kantata (the feed poller starts TimeToBilling); finance approves
invoices through the ingress when a run asks. Completion and latency come from the workflows' close
times in Temporal's visibility store, never from the benchmark's own guesses.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus

from activities.billing_starter import StartBillingInput, StarterActivities
from bench.seeding import DealRecord, salesforce
from config import Settings
from connectors.http import pooled
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.psa_feed import PollNow, PsaFeedPollerStatus
from runs.psa_feed import workflow_id as feed_id
from runs.starts import ensure_feed_poller, ensure_payment_pollers
from runs.time_to_billing import PendingApproval
from runs.time_to_billing import workflow_id as ttb_id
from workflows.psa_feed import PsaFeedPoller

# Result waits and describes in flight at once: the dev server refuses thousands of concurrent polls.
RESULT_WAITS = 64
FINANCE_PARALLEL = 16
APPROVAL_ATTEMPTS = 3
# The feed poller starts billing runs this many at a time (psa_feed.START_BATCH); so does the bench.
STARTER_BATCH = 10
# A month whose runs stop finishing for this long is reported with what its runs are stuck on.
NO_PROGRESS_SECONDS = 180.0


class BenchFailure(RuntimeError):
    pass


@dataclass(frozen=True)
class Arrival:
    """A deal closed won: when the close call was made and when Salesforce answered (epoch seconds)."""

    deal: DealRecord
    at: float
    answered: float


@dataclass(frozen=True)
class Completion:
    deal: DealRecord
    arrival: float
    done: float
    project_id: str | None = None

    @property
    def latency(self) -> float:
        return self.done - self.arrival


@dataclass
class BurstTrace:
    """Deals in flight (closed, not yet done), sampled once a second from the start of the burst."""

    samples: list[tuple[float, int]] = field(default_factory=list)


async def close_deals_at(
    settings: Settings,
    deals: Sequence[DealRecord],
    rate: float,
    *,
    then: Callable[[Arrival], Coroutine[Any, Any, Any]] | None = None,
) -> list[Arrival]:
    """Closes one deal every 1/rate seconds (open loop: a slow answer never delays the next deal)."""
    arrivals: list[Arrival] = []
    followers: list[asyncio.Task[Any]] = []
    async with salesforce(settings) as seeder:

        async def close(deal: DealRecord) -> None:
            at = time.time()
            await seeder.close_won(deal.opportunity_id)
            arrival = Arrival(deal=deal, at=at, answered=time.time())
            arrivals.append(arrival)
            if then is not None:
                followers.append(asyncio.create_task(then(arrival)))

        await seeder.call("GET", "limits")  # the token, before the clock starts
        start = time.monotonic() + 0.1
        calls = []
        for number, deal in enumerate(deals):
            delay = start + number / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            calls.append(asyncio.create_task(close(deal)))
        await asyncio.gather(*calls)
    await asyncio.gather(*followers)
    return sorted(arrivals, key=lambda a: a.at)


def _epoch(moment: datetime | None) -> float:
    if moment is None:
        raise BenchFailure("a closed workflow without a close time")
    return moment.timestamp()


class PsSync:
    def __init__(self, settings: Settings, client: Client) -> None:
        self.settings = settings
        self.client = client
        tokens = {role: token for token, role in settings.token_roles().items()}
        if "finance" not in tokens:
            raise BenchFailure("no finance token configured (PSSYNC_API_TOKENS)")
        self._finance_token = tokens["finance"]

    async def count(self, query: str) -> int:
        return (await self.client.count_workflows(query)).count

    async def executions(self, query: str) -> list[WorkflowExecution]:
        return [execution async for execution in self.client.list_workflows(query)]

    # --- closed-won -----------------------------------------------------------------------------------------

    async def wait_for_projects(
        self, arrivals: Sequence[Arrival], *, since: datetime, within: float, trace: BurstTrace | None = None
    ) -> list[Completion]:
        """Until every deal's OpportunityToProject has closed; latency = close time - close-won call."""
        wanted = {o2p_id("salesforce", a.deal.opportunity_id): a for a in arrivals}
        started = time.monotonic()
        scope = f"WorkflowType = 'OpportunityToProject' AND StartTime >= '{since.isoformat()}'"
        while True:
            closed = await self.executions(f"{scope} AND ExecutionStatus != 'Running'")
            done = [e for e in closed if e.id in wanted]
            failed = [e for e in done if e.status != WorkflowExecutionStatus.COMPLETED]
            if failed:
                raise BenchFailure(
                    f"{len(failed)} OpportunityToProject runs did not complete: {failed[0].id}"
                )
            if trace is not None:
                trace.samples.append((time.time(), len(wanted) - len(done)))
            if len(done) >= len(wanted):
                break
            if time.monotonic() - started > within:
                raise BenchFailure(
                    f"only {len(done)} of {len(wanted)} deals became projects in {within:.0f}s"
                )
            await asyncio.sleep(1.0)
        return [
            Completion(deal=wanted[e.id].deal, arrival=wanted[e.id].at, done=_epoch(e.close_time))
            for e in done
        ]

    async def trace_backlog(self, trace: BurstTrace, stop: asyncio.Event, *, since: datetime) -> None:
        query = (
            f"WorkflowType = 'OpportunityToProject' AND StartTime >= '{since.isoformat()}' "
            "AND ExecutionStatus = 'Running'"
        )
        while not stop.is_set():
            trace.samples.append((time.time(), await self.count(query)))
            try:
                await asyncio.wait_for(stop.wait(), 1.0)
            except TimeoutError:
                pass

    async def project_ids(self, deals: Sequence[DealRecord]) -> dict[int, str]:
        """Deal index -> Kantata project id, from each OpportunityToProject result."""
        gate = asyncio.Semaphore(RESULT_WAITS)

        async def one(deal: DealRecord) -> tuple[int, str]:
            async with gate:
                handle = self.client.get_workflow_handle(
                    o2p_id("salesforce", deal.opportunity_id), result_type=OpportunityToProjectResult
                )
                return deal.deal.index, (await handle.result()).project_id

        return dict(await asyncio.gather(*(one(d) for d in deals)))

    # --- billing -------------------------------------------------------------------------------------------

    async def start_feed_poller(
        self, *, poll_interval: float, settle_seconds: int, invoice_poll_seconds: int
    ) -> None:
        await ensure_feed_poller(
            self.client,
            self.settings.model_copy(update={"psa_poll_interval_seconds": poll_interval}),
            billing_settle_seconds=settle_seconds,
            invoice_poll_interval_seconds=invoice_poll_seconds,
        )
        # As `make run` does; they poll the ERPs at the configured interval (Xero's minute limit counts them).
        await ensure_payment_pollers(self.client, self.settings)

    async def poll_now(self) -> None:
        await self.client.get_workflow_handle(feed_id("kantata")).signal("poll_now", PollNow(actor="bench"))

    async def wait_for_feed_caught_up(self, *, within: float) -> None:
        """Until the feed poller has read all the PSA holds and waits for the next poll.

        The poller may still be reading the last month's approvals (and starting runs that find nothing
        left to bill) when the benchmark approves the next month; read then, the new approvals would start
        billing before the month is timed or checked."""
        started, before = time.monotonic(), await self.feed_status()
        await self.poll_now()
        while time.monotonic() - started < within:
            await asyncio.sleep(0.5)
            now = await self.feed_status()
            if now.polls > before.polls and now.waiting:
                return
        raise BenchFailure(f"the feed poller was still reading after {within:.0f}s")

    async def start_billing_runs(
        self, project_ids: Sequence[str], period: str, *, settle_seconds: int, invoice_poll_seconds: int
    ) -> None:
        """What the feed poller does once it has read the approvals, done by the benchmark instead:
        signal-with-start each project's run through ps-sync's own starter, ten at a time like the poller."""
        starter = StarterActivities(self.client, self.settings.task_queue)
        for start in range(0, len(project_ids), STARTER_BATCH):
            await asyncio.gather(
                *(
                    starter.start_billing(
                        StartBillingInput(
                            project_id=project_id,
                            period=period,
                            psa="kantata",
                            entities=tuple(self.settings.entities),
                            settle_seconds=settle_seconds,
                            invoice_poll_interval_seconds=invoice_poll_seconds,
                            event_ids=(),
                        )
                    )
                    for project_id in project_ids[start : start + STARTER_BATCH]
                )
            )

    async def projects_without_run(self, project_ids: Sequence[str], period: str) -> list[str]:
        found = {
            e.id
            for e in await self.executions(f"WorkflowType = 'TimeToBilling' AND BillingPeriod = '{period}'")
        }
        return [p for p in project_ids if ttb_id(p, period) not in found]

    async def feed_status(self) -> PsaFeedPollerStatus:
        return await self.client.get_workflow_handle(feed_id("kantata")).query(PsaFeedPoller.status)

    async def approve_as_finance(self, period: str, stop: asyncio.Event, approved: set[str]) -> None:
        """Finance approves every invoice that asks, through the ingress, as soon as it shows up."""
        query = (
            f"WorkflowType = 'TimeToBilling' AND BillingPeriod = '{period}' "
            "AND SyncStage = 'awaiting_approval' AND ExecutionStatus = 'Running'"
        )
        gate = asyncio.Semaphore(FINANCE_PARALLEL)
        async with httpx.AsyncClient(
            base_url=self.settings.ingress_public_url, timeout=30, limits=pooled(FINANCE_PARALLEL)
        ) as ingress:

            async def approve(project_id: str) -> None:
                # Finance decides on what it sees: the waiting invoice's version and total.
                pending = await self.client.get_workflow_handle(ttb_id(project_id, period)).query(
                    "pending_approval", result_type=PendingApproval
                )
                if pending is None:
                    return
                body = {
                    "invoice_version": pending.version,
                    "expected_total": pending.total.model_dump(mode="json"),
                }
                for attempt in range(1, APPROVAL_ATTEMPTS + 1):
                    try:
                        async with gate:
                            response = await ingress.post(
                                f"/billing-runs/{project_id}/{period}/approve",
                                json=body,
                                headers={"Authorization": f"Bearer {self._finance_token}"},
                            )
                    except httpx.TransportError:
                        # Giving up on a dropped connection would fail a whole benchmark over one lost reply;
                        # a second attempt after one that landed is told the invoice is already approved.
                        if attempt == APPROVAL_ATTEMPTS:
                            raise
                        continue
                    if response.status_code == 200 or (
                        attempt > 1 and response.status_code in (404, 409) and "approved" in response.text
                    ):
                        return
                    raise BenchFailure(
                        f"approval of {project_id} refused: {response.status_code} {response.text}"
                    )

            while not stop.is_set():
                # By run: a project's later run (work approved after its first run collected) asks afresh.
                waiting = {e.run_id: e.id.split(":")[1] for e in await self.executions(query)}
                fresh = {run: p for run, p in waiting.items() if run not in approved}
                approved.update(fresh)
                await asyncio.gather(*(approve(p) for p in fresh.values()))
                try:
                    await asyncio.wait_for(stop.wait(), 0.5)
                except TimeoutError:
                    pass

    async def wait_for_runs(self, project_ids: Sequence[str], period: str, *, within: float) -> None:
        """Until a TimeToBilling run exists for each project and month (in any state)."""
        wanted = {ttb_id(project_id, period) for project_id in project_ids}
        started = time.monotonic()
        while True:
            found = {
                e.id
                for e in await self.executions(
                    f"WorkflowType = 'TimeToBilling' AND BillingPeriod = '{period}'"
                )
            }
            if wanted <= found:
                return
            if time.monotonic() - started > within:
                raise BenchFailure(f"{len(wanted - found)} billing runs for {period} never started")
            await asyncio.sleep(0.5)

    async def wait_for_billing(
        self, period: str, project_ids: Sequence[str], *, within: float, watch_feed: bool
    ) -> list[WorkflowExecution]:
        """Until the TimeToBilling run of every project for the month has completed; returns those runs.

        With `watch_feed`, a feed poller that keeps polling without reading anything new while runs are
        missing is reported at once (with its figures), rather than waited on until `within` runs out.
        """
        wanted = {ttb_id(project_id, period) for project_id in project_ids}
        scope = f"WorkflowType = 'TimeToBilling' AND BillingPeriod = '{period}'"
        started = progressed = time.monotonic()
        watch = FeedWatch() if watch_feed else None
        completed = 0
        while True:
            # One look at the poller serves both: the stall watch, and whether it has read the feed to its end
            # (read before the runs are counted, so every run it started before it waited is counted).
            feed = None
            if watch is not None:
                feed = await self.feed_status()
                watch.check(feed, time.monotonic())
            failed = await self.count(
                f"{scope} AND ExecutionStatus IN ('Failed', 'Terminated', 'TimedOut', 'Canceled')"
            )
            if failed:
                raise BenchFailure(f"{failed} TimeToBilling runs for {period} failed; see the worker log")
            # With the feed, the last approvals may not have been read yet: done once it waits, caught up.
            caught_up = feed is None or feed.waiting
            # Runs, not projects: work approved after a project's run collected starts it a second run.
            now_completed = await self.count(f"{scope} AND ExecutionStatus = 'Completed'")
            running = await self.count(f"{scope} AND ExecutionStatus = 'Running'")
            if now_completed != completed:
                completed, progressed = now_completed, time.monotonic()
            elif running and time.monotonic() - progressed > NO_PROGRESS_SECONDS:
                raise BenchFailure(
                    f"billing {period}: no run finished for {NO_PROGRESS_SECONDS:.0f}s with {running} "
                    f"running and {completed} completed; " + await self._stuck(scope)
                )
            if not running and caught_up and now_completed >= len(wanted):
                done = [
                    e
                    for e in await self.executions(f"{scope} AND ExecutionStatus = 'Completed'")
                    if e.id in wanted
                ]
                if {e.id for e in done} >= wanted:
                    return done
            if time.monotonic() - started > within:
                raise BenchFailure(
                    f"billing {period} unfinished after {within:.0f}s ({running} runs running)"
                )
            await asyncio.sleep(0.5)

    async def _stuck(self, scope: str) -> str:
        """What the runs that do not finish are retrying: their pending activities' last failures."""
        reasons: dict[str, int] = {}
        running = await self.executions(f"{scope} AND ExecutionStatus = 'Running'")
        for execution in running[:50]:
            handle = self.client.get_workflow_handle(execution.id, run_id=execution.run_id)
            described = (await handle.describe()).raw_description
            if described.pending_workflow_task.attempt > 1:
                # The worker cannot run the workflow code itself: its failure is in the worker log.
                key = f"workflow task failing (attempt {described.pending_workflow_task.attempt})"
                reasons[key] = reasons.get(key, 0) + 1
            for pending in described.pending_activities:
                failure = pending.last_failure.message if pending.HasField("last_failure") else "none yet"
                key = f"{pending.activity_type.name}: {failure[:160]}"
                reasons[key] = reasons.get(key, 0) + 1
        ranked = sorted(reasons.items(), key=lambda r: -r[1])
        listed = "; ".join(f"{count} x {reason}" for reason, count in ranked)
        return f"{len(running)} still running; pending activities of up to 50 of them: {listed or 'none'}"


@dataclass
class FeedWatch:
    """Tells a stalled feed poller from a busy or an idle one: it keeps polling (its poll count moves,
    including resets by continue-as-new) while the number of events it has read does not."""

    stalled_after: float = 30.0
    events_seen: int | None = None
    since: float = 0.0
    polls: int | None = None
    poll_changes: int = 0

    def check(self, status: PsaFeedPollerStatus, now: float) -> None:
        if status.events_seen != self.events_seen:
            self.events_seen, self.since, self.polls, self.poll_changes = status.events_seen, now, None, 0
            return
        if self.polls is not None and status.polls != self.polls:
            self.poll_changes += 1
        self.polls = status.polls
        if now - self.since >= self.stalled_after and self.poll_changes >= 5:
            cursor = status.cursor or {}
            raise FeedStalled(
                f"the PSA feed poller kept polling for {now - self.since:.0f}s without reading a new event "
                f"(events seen {status.events_seen}, cursor high water {cursor.get('high_water')}, "
                f"{len(cursor.get('recent') or [])} events remembered) while billing runs were missing"
            )


class FeedStalled(BenchFailure):
    pass


def last_close(executions: Sequence[WorkflowExecution]) -> float:
    return max(_epoch(e.close_time) for e in executions)
