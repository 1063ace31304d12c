"""The benchmark run: start both worlds, seed the firm, run every workload, collect the figures.

Order of a run (every step in both worlds, ps-sync's and the direct script's, unless said):
1. the stack and the direct script's vendors start; Temporal's trivial-workflow ceiling is measured;
2. reference data (consultants, dated rate cards) and the deals are seeded;
3. closed-won bursts at each rate (deals closed in Salesforce on a fixed schedule), then any deals the
   billing needs that the bursts did not close;
4. per size, a month of work is logged on the billed projects; then approved and billed, and timed from
   the moment the last timesheet was approved to the moment the last invoice was posted and marked;
5. the governed run: one more month billed with Xero's real limits switched on in its sandbox;
6. the ceiling again (on a server now holding the whole run), history sizes, process figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio.client import Client

from bench.ceiling import Ceiling, trivial_ceiling
from bench.config import BenchConfig
from bench.direct import DirectScript
from bench.firm import DealPlan, Firm, WorkPlan
from bench.histories import TypeHistories, collect
from bench.procstats import Monitor, Phase
from bench.profiling import PhaseProfile, Profiler
from bench.pssync_side import (
    Arrival,
    BenchFailure,
    Completion,
    FeedStalled,
    PsSync,
    close_deals_at,
    last_close,
)
from bench.seeding import (
    DealRecord,
    Staff,
    approve_work,
    complete_milestones,
    create_deals,
    log_work,
    prepare_reference,
    staff_projects,
    unbilled,
)
from bench.stacks import Worlds
from canonical import Period
from config import Settings
from runs.client import connect_client

WORKFLOW_TYPES = (
    "OpportunityToProject",
    "TimeToBilling",
    "InvoiceToCash",
    "PsaFeedPoller",
    "ErpPaymentPoller",
)
# A poller that waits this long between polls only polls when the benchmark tells it to (see bill_month).
IDLE_POLL_SECONDS = 3600.0
# ps-sync's production default: InvoiceToCash checks an open invoice hourly.
INVOICE_POLL_SECONDS = 3600
SETUP_CLOSE_RATE = 20.0
BENCH_PROCESS = "bench (direct script, seeding)"
# The ps-sync side's processes, sampled when the run is profiled.
PROFILED = ("worker", "temporal", "ingress", "kantata", "xero", "salesforce", "tryton")


@dataclass
class BillingFigures:
    label: str
    period: str
    projects: int
    entries: int
    billable: int
    invoices: int
    pssync_seconds: float
    direct_seconds: float
    finance_approvals: int
    pssync_phase: Phase
    direct_phase: Phase
    started_by: str = "feed poller"
    rate_limited: int = 0
    rate_limited_by_problem: dict[str, int] = field(default_factory=dict)
    direct_rate_limited: int = 0
    xero_calls: dict[str, int] = field(default_factory=dict)
    direct_xero_calls: dict[str, int] = field(default_factory=dict)
    uk_invoices: int = 0

    @property
    def pssync_rate(self) -> float:
        return self.entries / self.pssync_seconds

    @property
    def direct_rate(self) -> float:
        return self.entries / self.direct_seconds


@dataclass
class BurstFigures:
    rate: float
    seconds: float
    pssync: list[Completion]
    direct: list[Completion]
    pssync_phase: Phase
    direct_phase: Phase


@dataclass
class Results:
    config: BenchConfig
    started_at: datetime
    machine: dict[str, str]
    firm_digest: str
    deals: int
    setup_seconds: dict[str, float] = field(default_factory=dict)
    ceilings: list[tuple[str, Ceiling]] = field(default_factory=list)
    bursts: list[BurstFigures] = field(default_factory=list)
    billing: list[BillingFigures] = field(default_factory=list)
    governed: BillingFigures | None = None
    histories: list[TypeHistories] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    peak_rss: dict[str, int] = field(default_factory=dict)
    finished_at: datetime | None = None
    notes: list[str] = field(default_factory=list)
    failure: str | None = None
    # `make test` wall time from a fresh clone: measured outside the benchmark, reported when given.
    make_test_seconds: float | None = None
    profiles: list[PhaseProfile] = field(default_factory=list)


def machine() -> dict[str, str]:
    def first(path: str, prefix: str) -> str | None:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError:
            return None
        return next((line.split(":", 1)[1].strip() for line in lines if line.startswith(prefix)), None)

    model = first("/proc/cpuinfo", "model name") or platform.processor() or "unknown"
    total = first("/proc/meminfo", "MemTotal")
    memory = f"{int(total.split()[0]) / 1024 / 1024:.1f} GiB" if total else "unknown"
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "os": platform.platform(),
    }


class Bench:
    def __init__(self, config: BenchConfig, worlds: Worlds, say: Callable[[str], None]) -> None:
        self.config = config
        self.worlds = worlds
        self.say = say
        self.ps_settings: Settings = worlds.pssync.settings
        self.direct_settings: Settings = worlds.direct.settings
        self.firm = Firm(
            config.seed,
            first_period=config.first_period,
            consultants=config.consultants,
            eu_share=config.eu_share,
        )
        processes = self._processes()
        self.monitor = Monitor(processes, alone=(BENCH_PROCESS,)).start()
        profiles = worlds.pssync.config.data_dir / "profiles"
        self.profiler = Profiler(processes, profiles) if config.profile else None
        # Deal indexes closed won so far, per world (the direct script's bursts are shorter).
        self._ps_closed: set[int] = set()
        self._direct_closed: set[int] = set()
        self._billing_range = 0
        # What went wrong but did not stop the run (a stalled feed poller), for the report.
        self.stalls: list[str] = []

    def _processes(self) -> dict[str, int]:
        found = {BENCH_PROCESS: os.getpid()}
        for prefix, stack in (("", self.worlds.pssync), ("direct ", self.worlds.direct)):
            for managed in stack.processes:
                if managed.process is not None:
                    found[f"{prefix}{managed.name}"] = managed.process.pid
        return found

    # --- the run -------------------------------------------------------------------------------------------

    async def run(self) -> Results:
        config = self.config
        deals = self._deals_needed()
        periods = config.periods()
        billed = Firm.billable_projects(deals, max(config.projects, config.governed_projects))
        work_plans = [
            self.firm.work(deals, period=period, entries=size, projects=config.projects)
            for period, size in zip(periods, config.sizes, strict=False)
        ]
        governed_plan = self.firm.work(
            deals, period=periods[-1], entries=config.governed_entries, projects=config.governed_projects
        )
        results = Results(
            config=config,
            started_at=datetime.now(UTC),
            machine=machine(),
            firm_digest=self.firm.digest(deals, [*work_plans, governed_plan]),
            deals=len(deals),
        )
        client = await connect_client(self.ps_settings)
        direct = DirectScript(self.direct_settings)
        try:
            ps = PsSync(self.ps_settings, client)
            await self._ceiling(client, results, "clean server")
            # The poller reads the feed once as it starts; after that it polls when told to (bill_month).
            await ps.start_feed_poller(
                poll_interval=IDLE_POLL_SECONDS,
                settle_seconds=config.settle_seconds,
                invoice_poll_seconds=INVOICE_POLL_SECONDS,
            )

            started = time.perf_counter()
            ps_staff, direct_staff = await asyncio.gather(
                prepare_reference(self.ps_settings, self.firm),
                prepare_reference(self.direct_settings, self.firm),
            )
            ps_deals, direct_deals = await asyncio.gather(
                create_deals(self.ps_settings, self.firm, deals),
                create_deals(self.direct_settings, self.firm, deals),
            )
            results.setup_seconds["reference data and deals, both worlds"] = time.perf_counter() - started
            self.say(f"seeded {len(deals)} deals and {len(self.firm.consultants)} consultants in both worlds")

            direct_projects: dict[int, str] = {}
            await self._bursts(ps, direct, ps_deals, direct_deals, direct_projects, results)

            started = time.perf_counter()
            needed = [record for record in ps_deals if record.deal.index in set(billed)]
            await self._close_rest(ps, direct, ps_deals, direct_deals, direct_projects, needed)
            ps_projects = await ps.project_ids(needed)
            billed_deals = [record.deal for record in needed]
            await asyncio.gather(
                staff_projects(self.ps_settings, self.firm, ps_staff, billed_deals, ps_projects),
                staff_projects(self.direct_settings, self.firm, direct_staff, billed_deals, direct_projects),
            )
            await self._sign_off_milestones(ps, ps_deals, direct_projects)
            results.setup_seconds["projects for billing, both worlds"] = time.perf_counter() - started

            for index, (size, plan) in enumerate(zip(config.sizes, work_plans, strict=True)):
                figures = await self._bill_month(
                    f"{size:,} entries",
                    plan,
                    ps,
                    direct,
                    (ps_staff, ps_projects),
                    (direct_staff, direct_projects),
                    # The last month is the largest, with the most runs open beside it.
                    profile=index == len(config.sizes) - 1,
                )
                results.billing.append(figures)

            results.governed = await self._governed(
                governed_plan, ps, direct, (ps_staff, ps_projects), (direct_staff, direct_projects)
            )
            await self._ceiling(client, results, "after the run")
            self.say("collecting history sizes")
            results.histories = await collect(client, WORKFLOW_TYPES)
        except Exception as failure:
            # What was measured before the failure is still worth reading; the caller decides the exit status.
            results.failure = f"{type(failure).__name__}: {failure}"
            self.say("run failed:\n" + "".join(traceback.format_exception(failure)))
        finally:
            await direct.aclose()
            self.monitor.stop()
        results.notes = list(self.stalls)
        results.phases = self.monitor.phases
        results.peak_rss = dict(self.monitor.peak_rss)
        results.profiles = self.profiler.phases if self.profiler is not None else []
        results.finished_at = datetime.now(UTC)
        return results

    def _profiled(self, phase: str, wanted: bool) -> contextlib.AbstractContextManager[None]:
        if self.profiler is None or not wanted:
            return contextlib.nullcontext()
        return self.profiler.sampling(phase, PROFILED)

    def _deals_needed(self) -> list[DealPlan]:
        config = self.config
        burst = sum(round(rate * config.burst_seconds) for rate in config.burst_rates)
        wanted = max(config.projects, config.governed_projects)
        count = max(burst, wanted)
        while True:
            deals = list(self.firm.deals(count))
            if sum(1 for deal in deals if not deal.fixed_fee) >= wanted:
                return deals
            count += 10

    async def _ceiling(self, client: Client, results: Results, when: str) -> None:
        if self.config.ceiling_seconds <= 0:
            return
        with self.monitor.phase(f"ceiling ({when})"):
            ceiling = await trivial_ceiling(client, seconds=self.config.ceiling_seconds)
        results.ceilings.append((when, ceiling))
        self.say(f"ceiling ({when}): {ceiling.per_second:.1f} trivial workflows/s")

    # --- closed-won ----------------------------------------------------------------------------------------

    async def _direct_closing(
        self, direct: DirectScript, records: list[DealRecord], rate: float, projects: dict[int, str]
    ) -> list[Completion]:
        completions: list[Completion] = []

        async def handle(arrival: Arrival) -> None:
            contract = await direct.on_closed_won(arrival.deal.opportunity_id)
            completions.append(
                Completion(
                    deal=arrival.deal, arrival=arrival.at, done=time.time(), project_id=contract.project_id
                )
            )
            projects[arrival.deal.deal.index] = contract.project_id

        await close_deals_at(self.direct_settings, records, rate, then=handle)
        self._direct_closed.update(record.deal.index for record in records)
        return completions

    async def _pssync_closing(self, ps: PsSync, records: list[DealRecord], rate: float) -> list[Completion]:
        since = datetime.now(UTC) - timedelta(seconds=2)
        arrivals = await close_deals_at(self.ps_settings, records, rate)
        done = await ps.wait_for_projects(arrivals, since=since, within=self.config.step_timeout)
        self._ps_closed.update(record.deal.index for record in records)
        return done

    async def _bursts(
        self,
        ps: PsSync,
        direct: DirectScript,
        ps_deals: list[DealRecord],
        direct_deals: list[DealRecord],
        direct_projects: dict[int, str],
        results: Results,
    ) -> None:
        start = 0
        for rate in self.config.burst_rates:
            count = round(rate * self.config.burst_seconds)
            self.say(f"closed-won burst: {rate:g} deals/s for {self.config.burst_seconds:g}s ({count} deals)")
            name = f"closed-won {rate:g}/s, ps-sync"
            fastest = rate == max(self.config.burst_rates)
            with self.monitor.phase(name) as ps_phase, self._profiled(name, fastest):
                ps_done = await self._pssync_closing(ps, ps_deals[start : start + count], rate)
            direct_count = min(count, round(rate * self.config.direct_burst_seconds))
            with self.monitor.phase(f"closed-won {rate:g}/s, direct") as direct_phase:
                direct_done = await self._direct_closing(
                    direct, direct_deals[start : start + direct_count], rate, direct_projects
                )
            results.bursts.append(
                BurstFigures(
                    rate=rate,
                    seconds=self.config.burst_seconds,
                    pssync=ps_done,
                    direct=direct_done,
                    pssync_phase=ps_phase,
                    direct_phase=direct_phase,
                )
            )
            start += count

    async def _close_rest(
        self,
        ps: PsSync,
        direct: DirectScript,
        ps_deals: list[DealRecord],
        direct_deals: list[DealRecord],
        direct_projects: dict[int, str],
        needed: list[DealRecord],
    ) -> None:
        """Every deal up to the last billed one is closed won in both worlds; those no burst closed are
        closed now (set-up, not timed as a workload)."""
        last = max(record.deal.index for record in needed) + 1
        self._billing_range = last
        ps_rest = [r for r in ps_deals[:last] if r.deal.index not in self._ps_closed]
        direct_rest = [r for r in direct_deals[:last] if r.deal.index not in self._direct_closed]
        if not ps_rest and not direct_rest:
            return
        self.say(f"closing {len(ps_rest)} + {len(direct_rest)} more deals for the billing projects")
        with self.monitor.phase("setup: more projects"):
            if ps_rest:
                await self._pssync_closing(ps, ps_rest, SETUP_CLOSE_RATE)
            if direct_rest:
                await self._direct_closing(direct, direct_rest, SETUP_CLOSE_RATE, direct_projects)

    async def _sign_off_milestones(
        self, ps: PsSync, ps_deals: list[DealRecord], direct_projects: dict[int, str]
    ) -> None:
        """Fixed-fee projects sign off their first milestone now, in the current (open) month.

        ps-sync bills a milestone in the month it was completed, once that month closes, so these runs
        wait for the month end and are not part of the timed billing; the poller is told to read the
        sign-offs now so their billing runs start before, not during, a timed month.
        """
        closed = [record for record in ps_deals[: self._billing_range] if record.deal.fixed_fee]
        if not closed:
            return
        ps_projects = await ps.project_ids(closed)
        indexes = [record.deal.index for record in closed]
        with self.monitor.phase("setup: milestone sign-offs"):
            await asyncio.gather(
                complete_milestones(self.ps_settings, ps_projects, indexes),
                complete_milestones(self.direct_settings, direct_projects, indexes),
            )
            started = datetime.now(UTC)
            await ps.poll_now()
            await ps.wait_for_runs(
                [ps_projects[index] for index in indexes], Period.of(started.date()).value, within=120
            )
        self.say(f"{len(indexes)} fixed-fee milestones signed off in both worlds")

    # --- billing -------------------------------------------------------------------------------------------

    async def _seed_month(
        self,
        plan: WorkPlan,
        ps_world: tuple[Staff, dict[int, str]],
        direct_world: tuple[Staff, dict[int, str]],
    ) -> tuple[Any, Any]:
        started = time.perf_counter()
        with self.monitor.phase(f"seeding {plan.period}"):
            ps_logged, direct_logged = await asyncio.gather(
                log_work(self.ps_settings, ps_world[0], ps_world[1], plan),
                log_work(self.direct_settings, direct_world[0], direct_world[1], plan),
            )
        self.say(
            f"{plan.period}: logged {plan.entries:,} items ({len(plan.time):,} time entries, "
            f"{len(plan.expenses):,} expenses) on {len(plan.deals)} projects in both worlds "
            f"in {time.perf_counter() - started:.0f}s"
        )
        return ps_logged, direct_logged

    async def _bill_month(
        self,
        label: str,
        plan: WorkPlan,
        ps: PsSync,
        direct: DirectScript,
        ps_world: tuple[Staff, dict[int, str]],
        direct_world: tuple[Staff, dict[int, str]],
        *,
        xero_control: bool = False,
        profile: bool = False,
    ) -> BillingFigures:
        if self.config.trigger == "feed":
            # Read to its end before the month is logged, so that nothing of this month (expenses posted,
            # time approved) is read before the benchmark asks, once everything is approved.
            await ps.wait_for_feed_caught_up(within=self.config.step_timeout)
        ps_logged, direct_logged = await self._seed_month(plan, ps_world, direct_world)
        ps_projects = [ps_world[1][index] for index in plan.deals]
        direct_projects = [direct_world[1][index] for index in plan.deals]

        # The direct script: approve everything, then bill everything.
        await approve_work(self.direct_settings, direct_logged)
        await self._expect_unbilled(self.direct_settings, direct_projects, plan)
        direct_xero_before = await self._xero_stats(self.direct_settings) if xero_control else None
        limited_before = direct.stats.rate_limited
        with self.monitor.phase(f"billing {label}, direct") as direct_phase:
            direct_seconds, billed = await direct.bill_all(
                direct_projects, plan.period, parallel=self.config.direct_parallel
            )
        await self._expect_unbilled(self.direct_settings, direct_projects, plan, after=True)
        direct_xero_after = await self._xero_stats(self.direct_settings) if xero_control else None
        self.say(f"{label}: direct script billed in {direct_seconds:.1f}s")

        # ps-sync: approve everything; from the last approval, the feed poller, billing runs and finance.
        await approve_work(self.ps_settings, ps_logged)
        await self._expect_unbilled(self.ps_settings, ps_projects, plan)
        ps_xero_before = await self._xero_stats(self.ps_settings) if xero_control else None
        stop, approved, stalls = asyncio.Event(), set[str](), self.stalls
        name = f"billing {label}, ps-sync"
        with self.monitor.phase(name) as ps_phase, self._profiled(name, profile):
            all_approved = time.time()
            feed = self.config.trigger == "feed"
            started_by = "feed poller" if feed else "bench via starter"
            starting: list[asyncio.Task[None]] = []
            if feed:
                await ps.poll_now()
            else:
                starting.append(asyncio.create_task(self._start_runs(ps, ps_projects, plan.period)))
            finance = asyncio.create_task(ps.approve_as_finance(plan.period, stop, approved))
            try:
                try:
                    runs = await ps.wait_for_billing(
                        plan.period, ps_projects, within=self.config.step_timeout, watch_feed=feed
                    )
                except FeedStalled as stalled:
                    # Measured anyway, with the stall in the figure: what a user would have lived through.
                    missing = await ps.projects_without_run(ps_projects, plan.period)
                    self.say(f"{label}: {stalled}; the starter starts the {len(missing)} missing runs")
                    stalls.append(f"{label}: {stalled}; {len(missing)}/{len(ps_projects)} runs not started")
                    started_by = f"feed poller, stalled: bench started {len(missing)}"
                    starting.append(asyncio.create_task(self._start_runs(ps, missing, plan.period)))
                    runs = await ps.wait_for_billing(
                        plan.period, ps_projects, within=self.config.step_timeout, watch_feed=False
                    )
            finally:
                stop.set()
                await finance
                await asyncio.gather(*starting)
        ps_seconds = last_close(runs) - all_approved
        await self._expect_unbilled(self.ps_settings, ps_projects, plan, after=True)
        ps_xero_after = await self._xero_stats(self.ps_settings) if xero_control else None
        self.say(
            f"{label}: ps-sync billed in {ps_seconds:.1f}s ({plan.entries / ps_seconds:,.0f} entries/s; "
            f"direct {plan.entries / direct_seconds:,.0f}/s), {len(approved)} finance approvals"
        )
        figures = BillingFigures(
            label=label,
            period=plan.period,
            projects=len(plan.deals),
            entries=plan.entries,
            billable=plan.billable_entries,
            invoices=sum(1 for b in billed if b.invoice is not None),
            pssync_seconds=ps_seconds,
            direct_seconds=direct_seconds,
            finance_approvals=len(approved),
            pssync_phase=ps_phase,
            direct_phase=direct_phase,
            started_by=started_by,
            direct_rate_limited=direct.stats.rate_limited - limited_before,
            uk_invoices=sum(1 for b in billed if b.invoice is not None and b.invoice.erp == "xero"),
        )
        if xero_control:
            assert ps_xero_before and ps_xero_after and direct_xero_before and direct_xero_after
            figures.rate_limited = ps_xero_after["rate_limited"] - ps_xero_before["rate_limited"]
            figures.rate_limited_by_problem = _diff(
                ps_xero_before["rate_limited_by_problem"], ps_xero_after["rate_limited_by_problem"]
            )
            figures.xero_calls = _diff(
                ps_xero_before["calls_by_operation"], ps_xero_after["calls_by_operation"]
            )
            figures.direct_xero_calls = _diff(
                direct_xero_before["calls_by_operation"], direct_xero_after["calls_by_operation"]
            )
        return figures

    async def _start_runs(self, ps: PsSync, project_ids: list[str], period: str) -> None:
        await ps.start_billing_runs(
            project_ids,
            period,
            settle_seconds=self.config.settle_seconds,
            invoice_poll_seconds=INVOICE_POLL_SECONDS,
        )

    async def _governed(
        self,
        plan: WorkPlan,
        ps: PsSync,
        direct: DirectScript,
        ps_world: tuple[Staff, dict[int, str]],
        direct_world: tuple[Staff, dict[int, str]],
    ) -> BillingFigures | None:
        if self.config.governed_entries <= 0:
            return None
        limits = {"enabled": True, "concurrent": 5, "per_minute": 60, "per_day": 5000}
        self.say("governed run: Xero limits on (5 concurrent, 60 a minute, 5,000 a day)")
        for settings in (self.ps_settings, self.direct_settings):
            await self._xero_limits(settings, limits)
        try:
            return await self._bill_month(
                f"governed {plan.entries:,} entries",
                plan,
                ps,
                direct,
                ps_world,
                direct_world,
                xero_control=True,
            )
        finally:
            for settings in (self.ps_settings, self.direct_settings):
                await self._xero_limits(settings, {"enabled": False})

    async def _xero_limits(self, settings: Settings, limits: dict[str, Any]) -> None:
        async with httpx.AsyncClient(base_url=settings.xero_base_url, timeout=10) as http:
            (await http.put("/_sandbox/rate-limits", json=limits)).raise_for_status()

    async def _xero_stats(self, settings: Settings) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=settings.xero_base_url, timeout=10) as http:
            response = await http.get("/_sandbox/stats")
            response.raise_for_status()
            stats: dict[str, Any] = response.json()
            return stats

    async def _expect_unbilled(
        self, settings: Settings, projects: list[str], plan: WorkPlan, *, after: bool = False
    ) -> None:
        counts = await unbilled(settings, projects, plan.period)
        found = counts.get("time_entries", 0) + counts.get("expenses", 0)
        expected = 0 if after else plan.billable_entries
        if found != expected:
            moment = "after billing" if after else "before billing"
            raise BenchFailure(
                f"{plan.period} {moment}: Kantata holds {found} approved, billable, uninvoiced items "
                f"({counts}); expected {expected}"
            )


def _diff(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        k: after.get(k, 0) - before.get(k, 0) for k in sorted(after) if after.get(k, 0) != before.get(k, 0)
    }
