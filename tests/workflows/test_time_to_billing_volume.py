"""A period with 20,000 approved entries on the dev server: batches, continue-as-new, bounded histories."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from canonical import Money
from devstack.story import previous_period
from ledger.repository import postings_for
from ledger.vocab import PostingState
from runs.time_to_billing import TimeToBillingResult
from sandboxes.kantata.app import create_app as create_kantata
from sandboxes.kantata.config import KantataSandboxConfig
from sandboxes.kantata.seed import TimeLog
from sandboxes.kantata.state import FIRST_IDS
from sandboxes.serve import serve_in_thread

from ..support.system import Sandboxes, System, running_system
from .billing_steps import approve_when_asked, begin_billing, deal_for, kantata, staff, unbilled_time

ENTRIES = 20_000
PEOPLE = 8
TEMPORAL_HISTORY_LIMIT = 10_000


async def _runs(handle: WorkflowHandle[object, object], first_run_id: str) -> list[int]:
    """History length of every run in the chain, following continue-as-new from the first run."""
    lengths: list[int] = []
    run_id: str | None = first_run_id
    while run_id is not None:
        history = await handle._client.get_workflow_handle(handle.id, run_id=run_id).fetch_history()
        lengths.append(len(history.events))
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return lengths


@pytest.fixture
async def volume_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> AsyncIterator[System]:
    """A Kantata sandbox of its own: 60,000 change events must not flood the feed other tests read."""
    app = create_kantata(KantataSandboxConfig())
    # Its project ids start far above the shared sandbox's, so billing workflow ids cannot collide.
    app.state.kantata.store.next_number("workspaces", start=FIRST_IDS["workspaces"] + 9_000_000)
    kantata_alone = serve_in_thread(app)
    try:
        own = Sandboxes(salesforce=sandboxes.salesforce, kantata=kantata_alone, xero=sandboxes.xero)
        async with running_system(dev_env.client, tmp_path, own) as system:
            yield system
    finally:
        kantata_alone.stop()


async def test_a_period_of_20000_entries_is_billed_in_batches_with_every_run_history_bounded(
    volume_system: System,
) -> None:
    system = volume_system
    started = time.perf_counter()
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("2500000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    people = [await staff(system, project, "Consultant") for _ in range(PEOPLE)]
    days = (period.last_day - period.first_day).days + 1
    logs = [
        TimeLog(people[i % PEOPLE].user_id, period.first_day + timedelta(days=i % days), 60)
        for i in range(ENTRIES)
    ]
    async with kantata(system) as seeder:
        ids = await seeder.log_time(project, logs, parallel=4)
        await seeder.submit_and_approve(project, ids, per_timesheet=1000)
    seeded = time.perf_counter() - started

    # A low threshold makes collection and marking continue as new several times, carrying the cursor.
    handle = await begin_billing(system, project, period, history_events_before_continue=150)
    first_run = handle.result_run_id
    assert first_run is not None
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None
    assert result.time_entries_billed == ENTRIES
    assert result.invoice.total == Money.of("2000000.00", "GBP")
    lengths = await _runs(handle, first_run)
    assert len(lengths) >= 3, lengths
    assert max(lengths) < TEMPORAL_HISTORY_LIMIT, lengths
    with system.database.session() as session:
        (posting,) = postings_for(session, project_id=project)
    assert posting.state == PostingState.BILLED and posting.number == result.invoice.number
    assert await unbilled_time(system, project, period) == []
    print(f"seeded {ENTRIES} entries in {seeded:.1f} s; billed in {len(lengths)} runs of {lengths} events")
