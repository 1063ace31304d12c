"""Record the Payables histories for the replay test: `python -m tests.replay.record_payables`.

Writes only Payables' and PayablesScan's histories (the full recording, `python -m tests.replay.record`,
plays this too): a scan finds a consultant's reimbursable expense on a UK project and starts the supplier's
run, which bills it in the Xero sandbox; a repeated start joins the run, the bill is paid and the run marks
the expense reimbursed.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from pathlib import Path

from temporalio.client import WorkflowExecutionStatus

from devstack.story import Story
from domain.payables import supplier_for
from runs.payables import (
    SCAN_WORKFLOW_TYPE,
    WORKFLOW_TYPE,
    BillChanged,
    PayablesInput,
    PayablesScanInput,
    PayablesStatus,
    start_payables,
    workflow_id,
)
from workflows.payables_scan import PayablesScan

from ..support.system import System, running_system, serving_sandboxes
from ..support.temporal import start_dev_server
from ..workflows.helpers import eventually, project_from_a_won_deal
from ..workflows.payables_steps import map_accounts, payable, reimbursable_expense

HISTORIES = Path(__file__).parent / "histories"


async def play_payables(system: System, story: Story) -> str:
    """An expense billed, joined by a repeated start, paid and marked reimbursed; returns the run's id."""
    map_accounts(system)
    project = await project_from_a_won_deal(system, story)
    _, expense_id, period = await reimbursable_expense(system, project.project_id, "42.50")
    supplier = supplier_for("kantata", await payable(system, period, expense_id))
    input = PayablesInput(psa="kantata", supplier_key=supplier.key, period=period.value)
    scanned = await system.client.execute_workflow(
        PayablesScan.run,
        PayablesScanInput(psa="kantata", period=period.value),
        id="payables-scan:recording",
        task_queue=system.task_queue,
    )
    assert workflow_id("kantata", supplier.key, period.value) in scanned.started
    handle = system.client.get_workflow_handle(workflow_id("kantata", supplier.key, period.value))

    async def posted() -> PayablesStatus | None:
        status: PayablesStatus = await handle.query("status", result_type=PayablesStatus)
        return status if status.stage == "awaiting_payment" else None

    (bill,) = (await eventually(posted, seconds=120, what="the bill posted")).bills
    await start_payables(system.client, task_queue=system.task_queue, input=input)
    await system.connectors.erps.by_system("xero").pay_bill(  # type: ignore[attr-defined]
        bill.bill_id, bill.total, reference="recording", idempotency_key=f"pay:{bill.bill_id}"
    )
    await handle.signal("bill_changed", BillChanged(bill_id=bill.bill_id))
    await handle.result()
    return handle.id


async def record() -> list[Path]:
    env = await start_dev_server()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, serving_sandboxes() as sandboxes:
        async with running_system(env.client, Path(tmp), sandboxes) as system:
            story = Story(system.settings, system.client, say=lambda _: None)
            await story.prepare()
            await play_payables(system, story)
            HISTORIES.mkdir(exist_ok=True)
            for kind in (WORKFLOW_TYPE, SCAN_WORKFLOW_TYPE):
                for old in HISTORIES.glob(f"{kind}-*.json"):
                    old.unlink()
            query = f"WorkflowType = '{WORKFLOW_TYPE}' OR WorkflowType = '{SCAN_WORKFLOW_TYPE}'"
            async for execution in system.client.list_workflows(query):
                if execution.status == WorkflowExecutionStatus.RUNNING:
                    continue
                history = await system.client.get_workflow_handle(
                    execution.id, run_id=execution.run_id
                ).fetch_history()
                name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{execution.workflow_type}-{execution.id}")
                path = HISTORIES / f"{name}.json"
                path.write_text(history.to_json())
                written.append(path)
    await env.shutdown()
    return written


if __name__ == "__main__":
    for path in asyncio.run(record()):
        print(path)
