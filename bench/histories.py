"""How big ps-sync's workflow histories got: events and bytes per run, and the largest payloads.

Closed runs are read from visibility (history length and size are recorded at close); runs still open
(InvoiceToCash follows its invoice for weeks, the feed poller never ends) are described one by one.
The largest history of each workflow type is fetched whole to find its largest events.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus

DESCRIBE_PARALLEL = 32


@dataclass(frozen=True)
class RunSize:
    workflow_id: str
    run_id: str
    events: int
    bytes: int


@dataclass(frozen=True)
class LargestResult:
    """The largest ActivityTaskCompleted event of a workflow type's runs, and the run that holds it."""

    workflow_id: str
    run_id: str
    bytes: int


@dataclass
class TypeHistories:
    workflow_type: str
    runs: list[RunSize] = field(default_factory=list)
    # The largest events of the biggest run: (event type, bytes).
    largest_events: list[tuple[str, int]] = field(default_factory=list)
    bytes_by_event_type: dict[str, int] = field(default_factory=dict)
    events_by_type: dict[str, int] = field(default_factory=dict)
    largest_result: LargestResult | None = None

    @property
    def largest(self) -> RunSize | None:
        return max(self.runs, key=lambda r: r.bytes, default=None)

    @property
    def median_events(self) -> float:
        return statistics.median(r.events for r in self.runs) if self.runs else 0.0

    @property
    def median_bytes(self) -> float:
        return statistics.median(r.bytes for r in self.runs) if self.runs else 0.0

    @property
    def max_events(self) -> int:
        return max((r.events for r in self.runs), default=0)


async def _open_size(client: Client, workflow_id: str, run_id: str, gate: asyncio.Semaphore) -> RunSize:
    async with gate:
        described = await client.get_workflow_handle(workflow_id, run_id=run_id).describe()
    info = described.raw_description.workflow_execution_info
    return RunSize(workflow_id, run_id, info.history_length, info.history_size_bytes)


async def _largest_result(client: Client, run: RunSize, gate: asyncio.Semaphore) -> LargestResult | None:
    async with gate:
        history = await client.get_workflow_handle(run.workflow_id, run_id=run.run_id).fetch_history()
    completed = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    sizes = [event.ByteSize() for event in history.events if event.event_type == completed]
    return LargestResult(run.workflow_id, run.run_id, max(sizes)) if sizes else None


async def collect(client: Client, workflow_types: tuple[str, ...]) -> list[TypeHistories]:
    gate = asyncio.Semaphore(DESCRIBE_PARALLEL)
    out = []
    for workflow_type in workflow_types:
        sizes = TypeHistories(workflow_type)
        pending = []
        async for execution in client.list_workflows(f"WorkflowType = '{workflow_type}'"):
            if execution.status == WorkflowExecutionStatus.RUNNING:
                pending.append(_open_size(client, execution.id, execution.run_id, gate))
            else:
                info = execution.raw_info
                sizes.runs.append(
                    RunSize(execution.id, execution.run_id, info.history_length, info.history_size_bytes)
                )
        sizes.runs.extend(await asyncio.gather(*pending))
        largest = sizes.largest
        if largest is not None:
            history = await client.get_workflow_handle(
                largest.workflow_id, run_id=largest.run_id
            ).fetch_history()
            by_type: Counter[str] = Counter()
            counts: Counter[str] = Counter()
            events = []
            for event in history.events:
                name = _event_name(event.event_type)
                size = event.ByteSize()
                by_type[name] += size
                counts[name] += 1
                events.append((name, size))
            sizes.events_by_type = dict(counts.most_common())
            sizes.largest_events = sorted(events, key=lambda pair: -pair[1])[:3]
            sizes.bytes_by_event_type = dict(by_type.most_common(5))
        results = await asyncio.gather(*(_largest_result(client, run, gate) for run in sizes.runs))
        sizes.largest_result = max(
            (found for found in results if found is not None), key=lambda r: r.bytes, default=None
        )
        out.append(sizes)
    return out


def _event_name(event_type: int) -> str:
    name = EventType.Name(event_type)  # type: ignore[arg-type]
    return name.removeprefix("EVENT_TYPE_").lower()
