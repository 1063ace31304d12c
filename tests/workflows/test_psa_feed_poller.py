"""The Kantata change-feed poller: no push webhooks, so it reads the feed with a durable cursor,
absorbs duplicates and reordering, catches up after downtime, and reports what the feed lost."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment

from activities.billing_starter import StarterActivities
from activities.feed_billing import FeedBillingActivities, PollAndNudgeBillingInput, PollAndNudgeBillingResult
from canonical import TimeApproved
from canonical.events import item_key
from connectors.kantata.feed import FeedCursor
from devstack.story import previous_period
from ledger.repository import list_exceptions
from runs.psa_feed import PollNow, PsaFeedPollerInput, PsaFeedPollerStatus
from runs.time_to_billing import WorkApproved
from runs.time_to_billing import workflow_id as billing_id
from workflows.psa_feed import POLLS_BEFORE_CONTINUE_NUDGING, PsaFeedPoller
from workflows.time_to_billing import TimeToBilling

from ..support.system import Sandboxes, System, running_system
from .conftest import prepared_story
from .helpers import (
    eventually,
    project_from_a_won_deal,
    query_or_none,
    scheduled_activities,
    scheduled_activity_names,
)


async def start_poller(system: System, **changes: object) -> WorkflowHandle[PsaFeedPoller, None]:
    # Its own id per test: the business id psa-feed:kantata belongs to the running system, not to tests.
    return await system.client.start_workflow(
        PsaFeedPoller.run,
        PsaFeedPollerInput(
            psa="kantata",
            entities=tuple(system.settings.entities),
            **{"poll_interval_seconds": 0.5, "billing_settle_seconds": 1, **changes},
        ),  # type: ignore[arg-type]
        id=f"psa-feed:kantata:test-{uuid.uuid4().hex[:8]}",
        task_queue=system.task_queue,
    )


async def running(client: Client, wf_id: str) -> bool:
    try:
        return (await client.get_workflow_handle(wf_id).query(TimeToBilling.status)).stage != ""
    except Exception:
        return False


async def runs_of(client: Client, wf_id: str) -> int:
    return len([run async for run in client.list_workflows(f'WorkflowId = "{wf_id}"')])


async def stop(handle: WorkflowHandle[PsaFeedPoller, None]) -> None:
    await handle.terminate("test finished")


async def test_duplicate_and_reordered_feed_events_start_one_billing_run_per_project_and_period(
    dev_system: System,
) -> None:
    kantata = dev_system.sandboxes.kantata.url
    await control(
        f"{kantata}/_sandbox/faults", {"seed": 7, "duplicate_event_rate": 0.5, "reorder_events": True}
    )
    await control(f"{kantata}/_sandbox/event-lag", {"max_lag_seconds": 2})
    try:
        story = await prepared_story(dev_system)
        projects = [await project_from_a_won_deal(dev_system, story) for _ in range(2)]
        period = previous_period(datetime.now(UTC).date())
        poller = await start_poller(dev_system)
        for created in projects:
            await story.log_and_approve_time(created.project_id, period, days=3)
        for created in projects:
            wf_id = billing_id(created.project_id, period.value)
            await eventually(lambda wf_id=wf_id: running(dev_system.client, wf_id), what=f"{wf_id} to start")
        # Let the late, repeated and reordered events arrive and be read before counting runs.
        polls = (await poller.query(PsaFeedPoller.status)).polls
        await eventually(lambda: _polled(poller, more_than=polls + 6), what="more polls")
        for created in projects:
            assert await runs_of(dev_system.client, billing_id(created.project_id, period.value)) == 1
        # Every distinct event in the feed was handled exactly once, though half were delivered twice.
        distinct = {
            event.event_id
            async for page in dev_system.connectors.psa.events(
                created_after=datetime.now(UTC) - timedelta(days=9), event_types=()
            )
            for event in page.items
        }
        assert (await poller.query(PsaFeedPoller.status)).events_seen == len(distinct)
        await stop(poller)
    finally:
        await control(f"{kantata}/_sandbox/event-lag", {"max_lag_seconds": 0})


async def test_poller_catches_up_after_the_worker_was_down(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> None:
    queue = f"pssync-test-{uuid.uuid4().hex[:10]}"
    period = previous_period(datetime.now(UTC).date())
    async with running_system(dev_env.client, tmp_path, sandboxes, task_queue=queue) as system:
        story = await prepared_story(system)
        created = await project_from_a_won_deal(system, story)
        poller = await start_poller(system)
        await eventually(lambda: _polled(poller, more_than=0), what="a first poll")
    # The worker is down: approvals keep happening in Kantata, nobody reads the feed.
    await story.log_and_approve_time(created.project_id, period, days=2)
    async with running_system(dev_env.client, tmp_path, sandboxes, task_queue=queue) as system:
        wf_id = billing_id(created.project_id, period.value)
        # The restarted poller reads everything the shared sandbox's feed holds, earlier tests' projects
        # included, and starts their runs ten at a time before it reaches this one.
        await eventually(
            lambda: running(system.client, wf_id), seconds=90, what="billing to start after the downtime"
        )
        await stop(poller)


async def _polled(poller: WorkflowHandle[PsaFeedPoller, None], *, more_than: int) -> bool:
    return (await poller.query(PsaFeedPoller.status)).polls > more_than


async def control(url: str, body: dict[str, object]) -> None:
    async with httpx.AsyncClient() as http:
        (await http.put(url, json=body)).raise_for_status()


async def test_events_lost_beyond_the_feed_window_are_reported_to_integration_support(
    dev_system: System,
) -> None:
    ten_days_ago = datetime.now(UTC) - timedelta(days=10)
    poller = await start_poller(
        dev_system, cursor=FeedCursor.starting_at(ten_days_ago).model_dump(mode="json")
    )
    status = await eventually(lambda: _gap(poller), what="the gap to be reported")
    assert status.last_gap is not None and status.last_gap.startswith(ten_days_ago.isoformat()[:10])
    with dev_system.database.session() as session:
        [gap] = [e for e in list_exceptions(session, process="psa_feed")]
    assert gap.owner == "integration_support" and "reconciliation" in gap.reason
    await stop(poller)


async def _gap(poller: WorkflowHandle[PsaFeedPoller, None]):  # type: ignore[no-untyped-def]
    status = await poller.query(PsaFeedPoller.status)
    return status if status.last_gap else None


async def test_a_caught_up_poller_says_it_is_waiting_and_polls_again_when_told(dev_system: System) -> None:
    poller = await start_poller(dev_system, poll_interval_seconds=3600)
    try:

        async def waiting() -> PsaFeedPollerStatus | None:
            status: PsaFeedPollerStatus | None = await query_or_none(poller, PsaFeedPoller.status)
            return status if status is not None and status.waiting else None

        first = await eventually(waiting, what="the poller to read the feed to its end")
        await poller.signal(PsaFeedPoller.poll_now, PollNow(actor="ops"))
        again = await eventually(
            lambda: _waiting_after(poller, first.polls), what="one more poll, then waiting again"
        )
        assert again.polls == first.polls + 1
    finally:
        await stop(poller)


async def _waiting_after(
    poller: WorkflowHandle[PsaFeedPoller, None], polls: int
) -> PsaFeedPollerStatus | None:
    status: PsaFeedPollerStatus | None = await query_or_none(poller, PsaFeedPoller.status)
    return status if status is not None and status.polls > polls and status.waiting else None


async def test_a_poll_nudges_the_billing_runs_itself_so_the_poller_history_holds_no_billing_starts(
    dev_system: System,
) -> None:
    story = await prepared_story(dev_system)
    projects = [(await project_from_a_won_deal(dev_system, story)).project_id for _ in range(3)]
    period = previous_period(datetime.now(UTC).date())
    # Kantata stamps events to the second: start a little before now, so none is missed.
    start = FeedCursor.starting_at(datetime.now(UTC) - timedelta(seconds=5)).model_dump(mode="json")
    # Runs that settle for an hour are still running when the feed is read again below.
    poller = await start_poller(dev_system, cursor=start, billing_settle_seconds=3600)
    billing = {project: billing_id(project, period.value) for project in projects}
    try:
        for project in projects:
            await story.log_and_approve_time(project, period, days=2)
        approved = {project: await _approved_time(dev_system, project) for project in projects}
        assert all(approved.values())

        async def every_run_heard_its_events() -> bool:
            for project, wf_id in billing.items():
                if not await running(dev_system.client, wf_id):
                    return False
                heard = await _work_approved_signals(dev_system, wf_id)
                if not set(approved[project]) <= {event for signal in heard for event in signal.event_ids}:
                    return False
            return True

        await eventually(every_run_heard_its_events, what="each billing run to hear its approvals")
        for project, wf_id in billing.items():
            heard = await _work_approved_signals(dev_system, wf_id)
            assert set(approved[project].values()) <= {item for signal in heard for item in signal.item_ids}

        await stop(poller)
        history = await poller.fetch_history()
        scheduled = scheduled_activity_names(history)
        assert "start_billing" not in scheduled and "poll_psa_events" not in scheduled
        polls = await _poll_results(dev_system, history)
        assert 1 <= len(polls) <= scheduled.count("poll_and_nudge_billing")
        assert sum(poll.runs_nudged for poll in polls) >= len(projects)
        assert sum(poll.events_read for poll in polls) >= sum(len(events) for events in approved.values())

        # The poller crashed before it kept the new cursor: the feed is read again from the old one.
        signals_before = {
            wf_id: len(await _work_approved_signals(dev_system, wf_id)) for wf_id in billing.values()
        }
        again = await _poll_and_nudge_from(dev_system, start)
        assert again.runs_nudged >= len(projects)
        for project, wf_id in billing.items():
            heard = await _work_approved_signals(dev_system, wf_id)
            renudged = {event for signal in heard[signals_before[wf_id] :] for event in signal.event_ids}
            assert renudged == set(approved[project])
            # Signalled again, never a second run.
            assert await runs_of(dev_system.client, wf_id) == 1
    finally:
        for handle in (poller, *map(dev_system.client.get_workflow_handle, billing.values())):
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:
                await handle.terminate("test finished")


async def _poll_and_nudge_from(system: System, cursor: dict[str, object]) -> PollAndNudgeBillingResult:
    activities = FeedBillingActivities(
        system.connectors.psa,
        system.database,
        StarterActivities(system.client, system.task_queue, system.connectors.psa),
    )
    return await ActivityEnvironment().run(
        activities.poll_and_nudge_billing,
        PollAndNudgeBillingInput(
            psa="kantata",
            entities=tuple(system.settings.entities),
            settle_seconds=3600,
            invoice_poll_interval_seconds=3600,
            cursor=cursor,
        ),
    )


async def _approved_time(system: System, project_id: str) -> dict[str, str]:
    """The project's time approvals in the feed: event id to the entry's `item_key`."""
    return {
        event.event_id: item_key("time", event.time_entry_id)
        async for page in system.connectors.psa.events(
            created_after=datetime.now(UTC) - timedelta(hours=1), event_types=()
        )
        for event in page.items
        if isinstance(event, TimeApproved) and event.project_id == project_id
    }


async def _poll_results(system: System, history: WorkflowHistory) -> list[PollAndNudgeBillingResult]:
    polls = {event.event_id for event in scheduled_activities(history, "poll_and_nudge_billing")}
    completed = [
        event.activity_task_completed_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
        and event.activity_task_completed_event_attributes.scheduled_event_id in polls
    ]
    converter = system.client.data_converter
    return [
        (await converter.decode(list(attributes.result.payloads), [PollAndNudgeBillingResult]))[0]
        for attributes in completed
    ]


async def _work_approved_signals(system: System, wf_id: str) -> list[WorkApproved]:
    history = await system.client.get_workflow_handle(wf_id).fetch_history()
    signals = [
        event.workflow_execution_signaled_event_attributes
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == "work_approved"
    ]
    converter = system.client.data_converter
    return [
        (await converter.decode(list(attributes.input.payloads), [WorkApproved]))[0] for attributes in signals
    ]


async def test_a_poller_that_nudges_billing_itself_continues_as_new_every_fifty_polls(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    # A minute between polls, skipped by the time-skipping server: fifty polls pass in an hour.
    poller = await start_poller(ts_system, poll_interval_seconds=60)
    first_run = poller.first_execution_run_id
    assert first_run is not None
    await ts_env.sleep(timedelta(minutes=POLLS_BEFORE_CONTINUE_NUDGING + 5))

    assert (await poller.describe()).run_id != first_run
    history = await ts_system.client.get_workflow_handle(poller.id, run_id=first_run).fetch_history()
    assert len(scheduled_activities(history, "poll_and_nudge_billing")) == POLLS_BEFORE_CONTINUE_NUDGING
    assert history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
