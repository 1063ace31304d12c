"""The ceiling of the stack itself: trivial workflows per second on the same Temporal dev server.

A workflow that returns its input at once, on a task queue of its own, served by a worker in the
benchmark process. Work is admitted a bounded number at a time (the dev server slows down when
flooded), so the figure is the best this server does, against which ps-sync's figures are read.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass

from temporalio import workflow
from temporalio.client import Client
from temporalio.worker import Worker

IN_FLIGHT = 20


@workflow.defn(name="BenchTrivial")
class Trivial:
    @workflow.run
    async def run(self, number: int) -> int:
        return number


@dataclass(frozen=True)
class Ceiling:
    completed: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0


async def trivial_ceiling(client: Client, *, seconds: float, in_flight: int = IN_FLIGHT) -> Ceiling:
    task_queue = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    completed = 0
    async with Worker(client, task_queue=task_queue, workflows=[Trivial]):
        deadline = time.perf_counter() + seconds
        started = time.perf_counter()
        counter = iter(range(10**9))

        async def lane() -> None:
            nonlocal completed
            while time.perf_counter() < deadline:
                number = next(counter)
                await client.execute_workflow(
                    Trivial.run, number, id=f"{task_queue}-{number}", task_queue=task_queue
                )
                completed += 1

        await asyncio.gather(*(lane() for _ in range(in_flight)))
        elapsed = time.perf_counter() - started
    return Ceiling(completed=completed, seconds=elapsed)
