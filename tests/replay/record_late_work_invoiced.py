"""Record TimeToBilling histories whose late approvals owe nothing:
`python -m tests.replay.record_late_work_invoiced`.

Writes only those two histories, beside the others. In one, the run bills two approved days and new feed
events name those days again while the invoice waits for finance; in the other, a late event names internal
time, which the PSA says nobody bills. Each run finishes without a follow-up.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import target_of
from ..workflows.test_time_to_billing_late_approvals import (
    play_late_events_for_invoiced_work,
    play_late_internal_time,
)
from .recording import on_a_dev_server, write_history

SCENARIOS = {
    "TimeToBilling-late-work-already-invoiced_recorded_2026-12-07.json": play_late_events_for_invoiced_work,
    "TimeToBilling-late-internal-time_recorded_2026-12-07.json": play_late_internal_time,
}


async def play(env: WorkflowEnvironment, directory: Path) -> list[Path]:
    written = []
    with serving_sandboxes() as sandboxes:
        async with running_system(env.client, directory, sandboxes, temporal_target=target_of(env)) as system:
            for name, scenario in SCENARIOS.items():
                handle, first_run, _, _ = await scenario(system)
                result = await handle.result()
                assert result.outcome == "posted"
                history = await system.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
                written.append(write_history(history, name))
    return written


async def main() -> list[Path]:
    return await on_a_dev_server(play)


if __name__ == "__main__":
    print(asyncio.run(main()))
