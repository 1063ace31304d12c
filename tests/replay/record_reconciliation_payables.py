"""Record a Reconciliation history that reconciles supplier bills, for the replay test:
`python -m tests.replay.record_reconciliation_payables [DIRECTORY]`.

Writes only that one history, into DIRECTORY (a new temporary one by default; the histories folder is left
as it is, so nothing recorded earlier is lost). The payables recording's bill is posted, paid and marked
reimbursed; a second consultant's bill is voided in Xero while its run waits; then the UK entity is
reconciled for their period: one bill agrees, the voided one is a difference for finance.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from pathlib import Path

from devstack.story import Story
from domain.payables import supplier_for
from runs.payables import PayablesInput, PayablesStatus, start_payables
from runs.reconciliation import ReconciliationInput
from workflows.reconciliation import Reconciliation

from ..support.system import System, running_system, serving_sandboxes
from ..support.temporal import start_dev_server
from ..workflows.helpers import eventually, project_from_a_won_deal
from ..workflows.payables_steps import payable, reimbursable_expense
from .record_payables import play_payables


async def play_voided_bill(system: System, story: Story) -> str:
    """A second consultant's expense billed, and the bill voided in Xero; returns the bill's period."""
    project = await project_from_a_won_deal(system, story)
    _, expense_id, period = await reimbursable_expense(system, project.project_id, "18.40")
    supplier = supplier_for("kantata", await payable(system, period, expense_id))
    handle = await start_payables(
        system.client,
        task_queue=system.task_queue,
        input=PayablesInput(psa="kantata", supplier_key=supplier.key, period=period.value),
    )

    async def posted() -> PayablesStatus | None:
        status: PayablesStatus = await handle.query("status", result_type=PayablesStatus)
        return status if status.stage == "awaiting_payment" else None

    (bill,) = (await eventually(posted, seconds=120, what="the bill posted")).bills
    await system.connectors.erps.by_system("xero").void_invoice(bill.bill_id)
    await handle.terminate("recording finished")
    return period.value


async def record() -> tuple[str, str]:
    """The recorded run's workflow id and its history as JSON."""
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory() as tmp, serving_sandboxes() as sandboxes:
            async with running_system(env.client, Path(tmp), sandboxes) as system:
                story = Story(system.settings, system.client, say=lambda _: None)
                await story.prepare()
                await play_payables(system, story)
                period = await play_voided_bill(system, story)
                workflow_id = f"reconciliation:recording:{period}"
                result = await system.client.execute_workflow(
                    Reconciliation.run,
                    ReconciliationInput(
                        period=period, entities=(system.settings.entity("UK"),), psa=system.settings.psa
                    ),
                    id=workflow_id,
                    task_queue=system.task_queue,
                )
                assert result.payables_rows, "the recording reconciled no bills"
                assert [d.kind for d in result.differences if d.project_id == "payables"] == [
                    "bill_voided_in_erp"
                ], result.differences
                history = await system.client.get_workflow_handle(workflow_id).fetch_history()
                return workflow_id, history.to_json()
    finally:
        await env.shutdown()


def write(directory: Path, workflow_id: str, history: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", f"Reconciliation-{workflow_id}") + ".json")
    path.write_text(history)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="histories-"))
    print(write(target, *asyncio.run(record())))
