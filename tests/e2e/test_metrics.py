"""After the story (a UK deal closed, billed after finance's approval, paid), the worker's /metrics serves the
Temporal SDK's series and ps-sync's business series, the ingress's /metrics the ledger's state, and
/health/facts the business's health: each with the values the story implies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from devstack.story import UK_DEAL, DealOutcome, Story
from ingress.identity import mint_dev_token
from observability.metrics import runtime_with_metrics
from runs.client import connect_client
from runs.starts import ensure_feed_poller, ensure_payment_pollers
from sandboxes.serve import free_port

from ..support.system import DEFAULTS, Sandboxes, System, running_system
from ..support.temporal import target_of
from ..workflows.helpers import eventually

Labels = dict[str, str]


@dataclass
class Scrape:
    samples: list[tuple[str, Labels, float]]

    @classmethod
    def of(cls, text: str) -> Scrape:
        return cls(
            [
                (sample.name, dict(sample.labels), sample.value)
                for family in text_string_to_metric_families(text)
                for sample in family.samples
            ]
        )

    def values(self, name: str, **labels: str) -> list[float]:
        return [
            value
            for sample_name, sample_labels, value in self.samples
            if sample_name == name and all(sample_labels.get(k) == v for k, v in labels.items())
        ]

    def total(self, name: str, **labels: str) -> float:
        return sum(self.values(name, **labels))

    def names(self) -> set[str]:
        return {name for name, _, _ in self.samples}


@dataclass
class MeasuredSystem:
    system: System
    worker_metrics_url: str


@pytest.fixture
async def measured(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> AsyncIterator[MeasuredSystem]:
    address = f"127.0.0.1:{free_port()}"
    target = target_of(dev_env)
    # The worker's client on a runtime serving metrics, as `python -m worker` builds it.
    client = await connect_client(
        DEFAULTS.model_copy(update={"temporal_address": target}), runtime=runtime_with_metrics(address)
    )
    uk_only = {"entities": [DEFAULTS.entity("UK")]}
    async with running_system(
        client, tmp_path, sandboxes, temporal_target=target, settings_changes=uk_only
    ) as system:
        poller = await ensure_feed_poller(
            system.client, system.settings, billing_settle_seconds=1, invoice_poll_interval_seconds=5
        )
        payment_pollers = await ensure_payment_pollers(system.client, system.settings)
        yield MeasuredSystem(system=system, worker_metrics_url=f"http://{address}/metrics")
        for long_running in (poller, *payment_pollers):
            await system.client.get_workflow_handle(long_running).terminate("test finished")


async def _runs_in_temporal(system: System, workflow_type: str) -> tuple[int, int]:
    """(runs started, runs completed) of a type on the system's task queue; a run continued as new is one."""
    started = completed = 0
    query = f"WorkflowType = '{workflow_type}' AND TaskQueue = '{system.task_queue}'"
    async for execution in system.client.list_workflows(query):
        started += execution.status != WorkflowExecutionStatus.CONTINUED_AS_NEW
        completed += execution.status == WorkflowExecutionStatus.COMPLETED
    return started, completed


async def _play(system: System) -> DealOutcome:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=90)
    await story.prepare()
    outcome = await story.play(UK_DEAL)
    assert outcome.paid
    return outcome


async def test_after_the_story_metrics_and_health_facts_show_the_run_posting_latency_and_feeds(
    measured: MeasuredSystem,
) -> None:
    system = measured.system
    started = datetime.now(UTC)
    outcome = await _play(system)

    async with httpx.AsyncClient(timeout=30) as http:
        worker = Scrape.of((await http.get(measured.worker_metrics_url)).raise_for_status().text)
        ingress_url = system.settings.ingress_public_url
        ingress = Scrape.of((await http.get(f"{ingress_url}/metrics")).raise_for_status().text)
        viewer = mint_dev_token(system.settings, "Vera Viewer", "viewer")
        facts = (
            (await http.get(f"{ingress_url}/health/facts", headers={"Authorization": f"Bearer {viewer}"}))
            .raise_for_status()
            .json()
        )

    # The Temporal SDK's own series, from the same endpoint.
    assert worker.total("temporal_workflow_completed_total") >= 3
    assert worker.values("temporal_activity_execution_latency_count")
    assert worker.total("temporal_request_total") > 0

    # Runs started and completed, by process (workflow type), as Temporal itself lists them on this task
    # queue: the feed poller may also have started billing runs for other tests' projects in the shared PSA.
    async def counted_as_temporal_lists_them() -> Scrape | None:
        async with httpx.AsyncClient(timeout=30) as http:
            scrape = Scrape.of((await http.get(measured.worker_metrics_url)).raise_for_status().text)
        for process in ("OpportunityToProject", "TimeToBilling", "InvoiceToCash"):
            started_runs, completed_runs = await _runs_in_temporal(system, process)
            if not (
                started_runs >= 1
                and completed_runs >= 1
                and scrape.total("pssync_runs_started_total", workflow_type=process) == started_runs
                and scrape.total("pssync_runs_completed_total", workflow_type=process, outcome="completed")
                == completed_runs
            ):
                return None
        return scrape

    worker = await eventually(counted_as_temporal_lists_them, seconds=60, what="run counts to match Temporal")
    assert worker.total("pssync_runs_started_total", workflow_type="PsaFeedPoller") == 1
    assert worker.values("pssync_runs_completed_total", workflow_type="PsaFeedPoller") == []

    # One invoice posted in Xero, none failed; the latency from approval to posting measured once.
    assert worker.total("pssync_invoices_posted_total", vendor="xero", outcome="created") == 1
    assert worker.total("pssync_posting_failures_total") == 0
    assert worker.total("pssync_billing_latency_seconds_count", vendor="xero") == 1
    latency = worker.total("pssync_billing_latency_seconds_sum", vendor="xero")
    elapsed = (datetime.now(UTC) - started).total_seconds()
    assert 0 < latency < elapsed

    # The PSA feed: the story's approvals read, each event's lag observed, the last read recent.
    read = worker.total("pssync_feed_events_read_total", feed="psa-feed:kantata")
    assert read >= 10  # two consultants, five days, each approval an event
    assert worker.total("pssync_feed_lag_seconds_count", feed="psa-feed:kantata") == read
    [last_read] = worker.values("pssync_feed_last_read_timestamp_seconds", feed="psa-feed:kantata")
    assert started.timestamp() <= last_read <= datetime.now(UTC).timestamp()
    assert worker.values("pssync_feed_last_read_timestamp_seconds", feed="payment-feed:xero")

    # The ingress: the ledger's state at scrape time, and the process's own.
    assert ingress.values("pssync_ledger_up") == [1.0]
    assert ingress.total("pssync_postings", erp="xero", state="billed") == 1
    assert 0 <= ingress.total("pssync_feed_read_age_seconds", feed="psa-feed:kantata") < elapsed
    assert ingress.values("pssync_exceptions_waiting", owner="finance") == [0.0]
    assert ingress.values("process_resident_memory_bytes")

    # The health facts, for the page and for anyone with a viewer's token.
    assert facts["posting"]["posted"] == 1 and facts["posting"]["success_rate"] == 1.0
    assert facts["billing_latency"]["samples"] == 1
    assert 0 < facts["billing_latency"]["p50_seconds"] == facts["billing_latency"]["p95_seconds"] < elapsed
    feeds = {feed["feed"]: feed for feed in facts["feeds"]}
    assert feeds["psa-feed:kantata"]["events_read"] == read and not feeds["psa-feed:kantata"]["stale"]
    assert "payment-feed:xero" in feeds
    # Billed and paid: nothing of this project is waiting any more.
    waiting = facts["approved_not_billed"]["runs"]
    assert outcome.billing_workflow not in {run["workflow_id"] for run in waiting}
    assert {queue["owner"] for queue in facts["exceptions"]} >= {"finance", "pmo", "integration_support"}
