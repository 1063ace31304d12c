"""Record the AlertScan history for the replay test: `python -m tests.replay.record_alert_scan`.

Writes only AlertScan's history (the full recording, `python -m tests.replay.record`, plays this scan too):
an exception waits for finance, whose webhook is configured, so the scan opens an incident and sends.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import uuid
from pathlib import Path

from pydantic import SecretStr

from config.alerting import AlertChannels
from ledger.repository import open_exception
from runs.alert_scan import AlertScanInput, AlertScanResult
from workflows.alert_scan import AlertScan

from ..support.receivers import webhook_receiver
from ..support.system import System, running_system, serving_sandboxes
from ..support.temporal import start_dev_server

HISTORIES = Path(__file__).parent / "histories"


async def play_alert_scan(system: System) -> str:
    """One scan that finds a waiting exception and notifies its owner; the scan's workflow id."""
    with system.database.session() as session:
        open_exception(
            session,
            dedupe_key=f"recording:{uuid.uuid4().hex[:8]}",
            process="time_to_billing",
            owner="finance",
            reason="recording: an exception waiting for finance",
            record={},
        )
    workflow_id = "alert-scan:recording"
    await system.client.execute_workflow(
        AlertScan.run,
        AlertScanInput(),
        id=workflow_id,
        task_queue=system.task_queue,
        result_type=AlertScanResult,
    )
    return workflow_id


async def record() -> Path:
    env = await start_dev_server()
    try:
        with (
            tempfile.TemporaryDirectory() as tmp,
            serving_sandboxes() as sandboxes,
            webhook_receiver() as hook,
        ):
            channels = {"finance": AlertChannels(webhook_url=SecretStr(hook.url))}
            async with running_system(
                env.client, Path(tmp), sandboxes, settings_changes={"alert_channels": channels}
            ) as system:
                workflow_id = await play_alert_scan(system)
                history = await system.client.get_workflow_handle(workflow_id).fetch_history()
            if len(hook.payloads()) != 1:
                raise RuntimeError(f"the recorded scan sent {len(hook.payloads())} notifications, not 1")
    finally:
        await env.shutdown()
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"AlertScan-{workflow_id}")
    path = HISTORIES / f"{name}.json"
    path.write_text(history.to_json())
    return path


if __name__ == "__main__":
    print(asyncio.run(record()))
