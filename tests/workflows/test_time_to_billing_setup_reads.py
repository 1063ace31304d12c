"""Billing's setup reads (project, rate card, team) retry apart: a failing read repeats only itself."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.story import previous_period
from sandboxes.faults import FaultConfig

from ..support.system import System, set_faults
from .conftest import prepared_story
from .helpers import eventually, project_from_a_won_deal, start_billing

SETUP_READS = ("read_project", "read_rate_card", "read_project_resources")


async def _resources_attempt(handle: WorkflowHandle) -> int:  # type: ignore[type-arg]
    pending = (await handle.describe()).raw_description.pending_activities
    return max(
        (p.attempt for p in pending if p.activity_type.name == "read_project_resources"),
        default=0,
    )


async def _setup_activities(handle: WorkflowHandle) -> tuple[Counter[str], dict[str, int], set[str]]:  # type: ignore[type-arg]
    """Per setup read: times scheduled, attempt of the started event, and which completed."""
    scheduled: Counter[str] = Counter()
    names: dict[int, str] = {}
    attempts: dict[str, int] = {}
    completed: set[str] = set()
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            names[event.event_id] = name
            scheduled[name] += 1
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            attempts[names[started.scheduled_event_id]] = started.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed.add(names[event.activity_task_completed_event_attributes.scheduled_event_id])
    return scheduled, attempts, completed


async def test_a_failing_team_read_is_retried_alone_while_project_and_rate_card_are_read_once(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    story = await prepared_story(dev_system)
    created = await project_from_a_won_deal(dev_system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=2)
    kantata = dev_system.sandboxes.kantata.url
    # The team read fails until we say so; the project and rate card reads are untouched.
    await set_faults(kantata, FaultConfig(server_error_rate=1.0, path_prefixes=("/api/v1/participations",)))
    handle = await start_billing(dev_system, created.project_id, period=period)
    try:
        await eventually(
            lambda: _at_least(handle, 3),
            seconds=90,
            what="the team read to fail three times",
        )
        await set_faults(kantata, FaultConfig())

        async def setup_done() -> bool:
            return set(SETUP_READS) <= (await _setup_activities(handle))[2]

        await eventually(setup_done, seconds=90, what="all three setup reads to complete")
        scheduled, attempts, _ = await _setup_activities(handle)
        assert {name: scheduled[name] for name in SETUP_READS} == dict.fromkeys(SETUP_READS, 1)
        assert attempts["read_project"] == 1 and attempts["read_rate_card"] == 1
        assert attempts["read_project_resources"] >= 3
        assert scheduled["get_project_billing_setup"] == 0
    finally:
        await set_faults(kantata, FaultConfig())
        await handle.terminate("test finished")


async def _at_least(handle: WorkflowHandle, attempts: int) -> bool:  # type: ignore[type-arg]
    return await _resources_attempt(handle) >= attempts
