"""Record workflow histories for the replay test: `python -m tests.replay.record`.

Plays the demo story (both ERPs) plus the exception paths on a fresh dev server and writes every run's
history to tests/replay/histories/. Re-record only when a workflow change has not shipped yet; a change
to shipped workflow code goes behind `workflow.patched()` and must replay the old histories unchanged.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from devstack.story import EU_DEAL, UK_DEAL, Story
from devstack.tryton import DEFAULT_HOME, TrytonServer, free_port
from runs.reconciliation import ReconciliationInput
from runs.reference_sync import ReferenceSyncInput
from runs.starts import ensure_feed_poller, ensure_payment_pollers
from workflows.reconciliation import Reconciliation
from workflows.reference_sync import ReferenceSync

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import start_dev_server, target_of
from .record_alert_scan import play_alert_scan
from .record_payables import play_payables

HISTORIES = Path(__file__).parent / "histories"


async def record() -> list[Path]:
    env = await start_dev_server()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, serving_sandboxes() as sandboxes:
        tryton = TrytonServer(data_dir=Path(tmp) / "tryton", port=free_port(), home=DEFAULT_HOME, fresh=True)
        tryton.start()
        try:
            async with running_system(
                env.client, Path(tmp), sandboxes, temporal_target=target_of(env), tryton=tryton
            ) as system:
                poller = await ensure_feed_poller(
                    system.client, system.settings, billing_settle_seconds=1, invoice_poll_interval_seconds=5
                )
                # Polling every second, so the recording holds payments passed on to InvoiceToCash runs.
                fast = system.settings.model_copy(update={"payment_poll_interval_seconds": 1.0})
                payment_pollers = await ensure_payment_pollers(system.client, fast)
                story = Story(system.settings, system.client)
                await story.prepare()
                outcomes = [await story.play(plan) for plan in (UK_DEAL, EU_DEAL)]
                await story.play_exception_fixed_and_retried()
                period = outcomes[0].billing_workflow.rsplit(":", 1)[-1]
                await system.client.execute_workflow(
                    ReferenceSync.run,
                    ReferenceSyncInput(entities=tuple(system.settings.entities), psa=system.settings.psa),
                    id="reference-sync:recording",
                    task_queue=system.task_queue,
                )
                await system.client.execute_workflow(
                    Reconciliation.run,
                    ReconciliationInput(
                        period=period, entities=tuple(system.settings.entities), psa=system.settings.psa
                    ),
                    id=f"reconciliation:recording:{period}",
                    task_queue=system.task_queue,
                )
                await play_alert_scan(system)
                await play_payables(system, story)
                for running in (poller, *payment_pollers):
                    await system.client.get_workflow_handle(running).terminate("recording finished")
                HISTORIES.mkdir(exist_ok=True)
                for old in HISTORIES.glob("*.json"):
                    old.unlink()
                async for execution in system.client.list_workflows():
                    if execution.status == WorkflowExecutionStatus.RUNNING:
                        continue
                    history = await system.client.get_workflow_handle(
                        execution.id, run_id=execution.run_id
                    ).fetch_history()
                    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{execution.workflow_type}-{execution.id}")
                    path = HISTORIES / f"{name}.json"
                    path.write_text(history.to_json())
                    written.append(path)
        finally:
            tryton.stop()
    await env.shutdown()
    return written


if __name__ == "__main__":
    for path in asyncio.run(record()):
        print(path)
