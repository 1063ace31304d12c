"""The big disruptions of a chaos run, on the seeded schedule: vendor outages, Temporal server restarts,
and worker SIGKILLs while an invoice is being posted.

A kill waits for its moment: a worker running `post_invoice` for a billing run the workload has in flight
(the run's pending activity names the worker, `pid@host`). The supervisor restarts the killed worker; the
posting is retried once its heartbeat times out, on whichever worker is there, under the same idempotency
key. A Temporal restart stops the server as a service manager would (SIGTERM); the supervisor starts it
again on the same database file and port. An outage makes one vendor answer ps-sync with nothing but 5xx.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.options import ChaosOptions
from chaos.schedule import Schedule
from chaos.temporal_waits import Runs
from chaos.vendors import Vendors
from chaos.world import TEMPORAL_BACK_SECONDS, ChaosWorld, Restart

POSTING_ACTIVITY = "post_invoice"
WATCH_SECONDS = 0.15
SUPERVISE_SECONDS = 0.25


@dataclass
class OutageRecord:
    vendor: str
    at: float
    seconds: float
    refused: int


@dataclass
class Disruptions:
    world: ChaosWorld
    vendors: Vendors
    runs: Runs
    schedule: Schedule
    options: ChaosOptions
    say: Callable[[str], None]
    # Billing runs the workload has in flight: where postings happen.
    billing_runs: set[str] = field(default_factory=set)
    outages: list[OutageRecord] = field(default_factory=list)
    # Set while the Temporal server is being stopped, so the supervisor does not restart it mid-stop.
    hold_supervision: bool = False
    started: float = 0.0

    def billing_started(self, workflow_id: str) -> None:
        self.billing_runs.add(workflow_id)

    def billing_finished(self, workflow_id: str) -> None:
        self.billing_runs.discard(workflow_id)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def supervise(self) -> None:
        """`make run`'s supervisor, ticked for the whole run: it restarts what died."""
        while True:
            if not self.hold_supervision:
                self.world.supervise()
            await asyncio.sleep(SUPERVISE_SECONDS)

    async def run(self) -> None:
        self.started = time.monotonic()
        await asyncio.gather(self._outages(), self._restarts(), self._kills())

    async def _at(self, offset: float) -> None:
        await asyncio.sleep(max(0.0, self.started + offset - time.monotonic()))

    async def _outages(self) -> None:
        for outage in self.schedule.outages:
            await self._at(outage.at)
            before = (await self.vendors.injected())[outage.vendor]["server_error"]
            self.say(f"chaos: {outage.vendor} goes down for {outage.seconds:g} s (ps-sync gets 5xx only)")
            await self.vendors.set_faults(outage.vendor, self.schedule.outage_config(outage.vendor))
            try:
                await asyncio.sleep(outage.seconds)
            finally:
                # Carries on with the random faults where they stood (same seed and script).
                await self.vendors.set_faults(outage.vendor, self.schedule.faults[outage.vendor])
            after = (await self.vendors.injected())[outage.vendor]["server_error"]
            self.outages.append(
                OutageRecord(outage.vendor, round(self.elapsed(), 1), outage.seconds, after - before)
            )
            self.say(f"chaos: {outage.vendor} is back after refusing {after - before} calls")

    async def _restarts(self) -> None:
        for offset in self.schedule.temporal_restarts:
            await self._at(offset)
            began = time.monotonic()
            self.hold_supervision = True
            try:
                await asyncio.to_thread(self.world.stop_temporal)
            finally:
                self.hold_supervision = False
            deadline = time.monotonic() + TEMPORAL_BACK_SECONDS
            while not await asyncio.to_thread(self.world.temporal_answers):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the Temporal server did not come back within {TEMPORAL_BACK_SECONDS:g} s"
                    )
                await asyncio.sleep(0.25)
            down = time.monotonic() - began
            self.world.restarts.append(Restart(at=round(began - self.started, 1), down_seconds=down))
            self.say(f"chaos: the Temporal server answers again after {down:.1f} s")

    async def _kills(self) -> None:
        last = -math.inf
        while len(self.world.kills) < self.options.worker_kills:
            await asyncio.sleep(WATCH_SECONDS)
            now = self.elapsed()
            if now < self.options.disrupt_after or now - last < self.options.kill_spacing_seconds:
                continue
            # One kill at a time: the last one's worker must be back before the next.
            if not all(worker.alive() for worker in self.world.workers()):
                continue
            if await self._kill_a_posting_worker():
                last = self.elapsed()

    async def _kill_a_posting_worker(self) -> bool:
        # A posting killed once is retried after its heartbeat times out; the next kill goes to another one.
        killed = {kill.workflow_id for kill in self.world.kills}
        for workflow_id in sorted(self.billing_runs - killed):
            for started in await self.runs.started_activities(workflow_id):
                if started.activity != POSTING_ACTIVITY:
                    continue
                pid_text = started.worker_identity.split("@", 1)[0]
                worker = self.world.worker_of(int(pid_text)) if pid_text.isdigit() else None
                if worker is None:
                    continue  # its worker is already gone: the heartbeat timeout will retry it
                self.world.kill_worker(
                    worker, workflow_id=workflow_id, activity=POSTING_ACTIVITY, at=round(self.elapsed(), 1)
                )
                return True
        return False
