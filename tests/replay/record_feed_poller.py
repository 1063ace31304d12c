"""Record a PsaFeedPoller history of polls that nudge billing themselves:
`python -m tests.replay.record_feed_poller`.

Writes only that history, beside the others (nothing is wiped): on a fresh dev server a won deal becomes a
Kantata project, time on it is approved twice (two polls apart), the one activity of a poll signals the
project's billing run with the approved entries each time (no billing start lands in the poller's history),
and the poller is terminated while it waits for the feed. The earlier histories of this poller were
recorded by this script before each poll nudged billing itself.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from devstack.story import previous_period
from runs.psa_feed import PsaFeedPollerInput, PsaFeedPollerStatus
from workflows.psa_feed import PsaFeedPoller

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import target_of
from ..workflows.conftest import prepared_story
from ..workflows.helpers import eventually, project_from_a_won_deal, query_or_none
from .recording import on_a_dev_server, write_history

NAME = "PsaFeedPoller-poll-starts-billing_recorded_2026-12-07.json"


async def play_feed_poller(env: WorkflowEnvironment, directory: Path) -> Path:
    with serving_sandboxes() as sandboxes:
        async with running_system(env.client, directory, sandboxes, temporal_target=target_of(env)) as system:
            story = await prepared_story(system)
            created = await project_from_a_won_deal(system, story)
            period = previous_period(datetime.now(UTC).date())
            poller = await system.client.start_workflow(
                PsaFeedPoller.run,
                PsaFeedPollerInput(
                    psa="kantata",
                    entities=tuple(system.settings.entities),
                    poll_interval_seconds=0.5,
                    billing_settle_seconds=1,
                ),
                id="psa-feed:kantata:poll-starts-billing",
                task_queue=system.task_queue,
            )
            for approvals in (1, 2):
                await story.log_and_approve_time(created.project_id, period, days=1)
                await eventually(
                    lambda approvals=approvals: _nudged_and_waiting(poller, at_least=approvals),
                    what=f"billing nudged {approvals} time(s), the feed read to its end",
                )
            await poller.terminate("recorded")
            history = await poller.fetch_history()
    return write_history(history, NAME)


async def _nudged_and_waiting(
    poller: WorkflowHandle[PsaFeedPoller, None], *, at_least: int
) -> PsaFeedPollerStatus | None:
    status: PsaFeedPollerStatus | None = await query_or_none(poller, PsaFeedPoller.status)
    return (
        status if status is not None and status.billing_runs_nudged >= at_least and status.waiting else None
    )


async def main() -> Path:
    return await on_a_dev_server(play_feed_poller)


if __name__ == "__main__":
    print(asyncio.run(main()))
