"""Steps the workflow tests share: a closed-won deal turned into a project, approved time, queries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from canonical import Period
from devstack.story import UK_DEAL, DealPlan, Story, previous_period
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.starts import start_opportunity_to_project
from runs.time_to_billing import TimeToBillingInput, workflow_id
from workflows.time_to_billing import TimeToBilling

from ..support.system import System

T = TypeVar("T")


def stamp() -> str:
    return datetime.now(UTC).strftime("%H%M%S%f")


async def project_from_a_won_deal(
    system: System, story: Story, plan: DealPlan = UK_DEAL
) -> OpportunityToProjectResult:
    """A closed-won deal, started as the ingress would, run to completion."""
    deal = await story.close_a_deal(plan, stamp())
    await start_opportunity_to_project(
        system.client,
        system.settings,
        crm="salesforce",
        opportunity_id=deal.opportunity_id,
        notification_id=f"test-{deal.opportunity_id}",
    )
    handle = system.client.get_workflow_handle(
        o2p_id("salesforce", deal.opportunity_id), result_type=OpportunityToProjectResult
    )
    return await handle.result()


async def start_billing(
    system: System, project_id: str, *, period: Period | None = None, **changes: Any
) -> WorkflowHandle[Any, Any]:
    period = period or previous_period(datetime.now(UTC).date())
    return await system.client.start_workflow(
        TimeToBilling.run,
        TimeToBillingInput(
            project_id=project_id,
            period=period.value,
            psa="kantata",
            entities=tuple(system.settings.entities),
            settle_seconds=1,
            **changes,
        ),
        id=workflow_id(project_id, period.value),
        task_queue=system.task_queue,
    )


async def query_or_none(
    handle: WorkflowHandle[Any, Any], query: Any, *, seconds: float = 5.0, result_type: type | None = None
) -> Any:
    """A query's answer, or None when none came in time, for callers that poll and can simply ask again.

    A query sent while a run continues as new can reach the new run before its first task is scheduled; the
    time-skipping server, under load, then leaves it unanswered until the call times out. The next query finds
    the new run started and is answered.
    """
    try:
        return await handle.query(query, result_type=result_type, rpc_timeout=timedelta(seconds=seconds))
    except RPCError as err:
        if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
            return None
        raise


async def eventually(probe: Callable[[], Any], *, seconds: float = 30.0, what: str = "condition") -> Any:
    """Poll an async probe until it returns something truthy (real time, not workflow time)."""
    deadline = time.monotonic() + seconds
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def scheduled_activities(history: WorkflowHistory, activity: str | None = None) -> list[HistoryEvent]:
    """The history's ActivityTaskScheduled events, in order; only those of `activity` when it is named."""
    return [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and activity in (None, event.activity_task_scheduled_event_attributes.activity_type.name)
    ]


def scheduled_activity_names(history: WorkflowHistory) -> list[str]:
    return [
        event.activity_task_scheduled_event_attributes.activity_type.name
        for event in scheduled_activities(history)
    ]
