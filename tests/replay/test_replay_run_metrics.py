"""The run-counting interceptor adds nothing to a history: every recorded history replays with it installed,
and a replay records no run started or completed."""

from __future__ import annotations

import json
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.runtime import BUFFERED_METRIC_KIND_COUNTER, MetricBuffer, Runtime, TelemetryConfig
from temporalio.worker import Replayer

from config import Settings
from observability.metrics import RUNS_COMPLETED, RUNS_STARTED
from observability.run_metrics import RunMetricsInterceptor
from runs.codec import data_converter
from worker import WORKFLOWS

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def _completed(path: Path) -> bool:
    events = json.loads(path.read_text())["events"]
    return any("workflowExecutionCompletedEventAttributes" in event for event in events)


async def test_every_history_replays_with_run_metrics_and_counts_no_run() -> None:
    buffer = MetricBuffer(10_000)
    runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer))
    replayer = Replayer(
        workflows=list(WORKFLOWS),
        data_converter=data_converter(Settings()),
        interceptors=[RunMetricsInterceptor()],
        runtime=runtime,
    )
    assert any(_completed(path) for path in HISTORIES)
    for path in HISTORIES:
        await replayer.replay_workflow(WorkflowHistory.from_json(path.stem, path.read_text()))
    counted = [
        update
        for update in buffer.retrieve_updates()
        if update.metric.kind == BUFFERED_METRIC_KIND_COUNTER
        and update.metric.name in (RUNS_STARTED, RUNS_COMPLETED)
    ]
    assert counted == []
