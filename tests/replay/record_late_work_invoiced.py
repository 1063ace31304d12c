"""Record a TimeToBilling history whose late approvals name only invoiced work:
`python -m tests.replay.record_late_work_invoiced`.

Writes only that history, beside the others: the run bills two approved days, new feed events name those
days again while the invoice waits for finance, and the run finishes without a follow-up.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import start_dev_server, target_of
from ..workflows.test_time_to_billing_late_approvals import play_late_events_for_invoiced_work

HISTORIES = Path(__file__).parent / "histories"
NAME = "TimeToBilling-late-work-already-invoiced_recorded_2026-12-07.json"


async def play(env: WorkflowEnvironment, directory: Path) -> Path:
    with serving_sandboxes() as sandboxes:
        async with running_system(env.client, directory, sandboxes, temporal_target=target_of(env)) as system:
            handle, first_run, _, _ = await play_late_events_for_invoiced_work(system)
            result = await handle.result()
            assert result.outcome == "posted" and result.time_entries_billed == 2
            history = await system.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    HISTORIES.mkdir(exist_ok=True)
    path = HISTORIES / NAME
    path.write_text(history.to_json())
    return path


async def main() -> Path:
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return await play(env, Path(tmp))
    finally:
        await env.shutdown()


if __name__ == "__main__":
    print(asyncio.run(main()))
