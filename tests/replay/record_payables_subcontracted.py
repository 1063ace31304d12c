"""Record a Payables history with subcontracted time for the replay test:
`python -m tests.replay.record_payables_subcontracted`.

A subcontractor's approved time (one entry without a cost rate, which becomes a finance exception) and their
firm's hotel bill are found by a scan, billed together in the Xero sandbox, joined by a repeated start,
paid, and the expense and time marked paid. The history is recorded into a temporary directory and only the
firm's Payables run is copied into `histories/`, with the `_recorded_2026-12-07b` suffix; nothing there is
removed.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from canonical import Money, Period
from devstack.story import Story
from domain.payables import vendor_supplier
from runs.payables import (
    BillChanged,
    PayablesInput,
    PayablesScanInput,
    PayablesStatus,
    start_payables,
    workflow_id,
)
from sandboxes.kantata.seed import KantataSeeder
from workflows.payables_scan import PayablesScan

from ..support.system import System, running_system, serving_sandboxes
from ..support.temporal import start_dev_server
from ..workflows.helpers import eventually, project_from_a_won_deal
from ..workflows.payables_steps import approved_time, map_accounts, subcontractor

HISTORIES = Path(__file__).parent / "histories"
SUFFIX = "_recorded_2026-12-07b"
FIRM = "Northwind Contractors Ltd"


async def play_subcontracted_time(system: System, story: Story) -> str:
    """The firm's time and expense billed once, paid, and marked paid; returns the run's id."""
    map_accounts(system)
    project = await project_from_a_won_deal(system, story)
    sam = await subcontractor(system, project.project_id, FIRM, Money.of("61.37", "GBP"))
    eve = await subcontractor(system, project.project_id, FIRM, Money.of("70.00", "EUR"), name="Eve Euro")
    await approved_time(system, project.project_id, sam, 505, 25)
    await approved_time(system, project.project_id, eve, 50)
    today = datetime.now(UTC).date()
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        await kantata.log_expense(
            project.project_id, day=today, amount=Money.of("310.00", "GBP"), category="Lodging", vendor=FIRM
        )
    period = Period.of(today)
    input = PayablesInput(psa="kantata", supplier_key=vendor_supplier(FIRM).key, period=period.value)
    run_id = workflow_id("kantata", input.supplier_key, period.value)
    scanned = await system.client.execute_workflow(
        PayablesScan.run,
        PayablesScanInput(psa="kantata", period=period.value),
        id="payables-scan:recording-subcontracted",
        task_queue=system.task_queue,
    )
    assert run_id in scanned.started
    handle = system.client.get_workflow_handle(run_id)

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
    return run_id


async def record() -> list[Path]:
    env = await start_dev_server()
    written: list[Path] = []
    with tempfile.TemporaryDirectory() as tmp, serving_sandboxes() as sandboxes:
        async with running_system(env.client, Path(tmp), sandboxes) as system:
            story = Story(system.settings, system.client, say=lambda _: None)
            await story.prepare()
            run_id = await play_subcontracted_time(system, story)
            history = await system.client.get_workflow_handle(run_id).fetch_history()
            name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"Payables-{run_id}") + SUFFIX
            recorded = Path(tmp) / f"{name}.json"
            recorded.write_text(history.to_json())
            HISTORIES.mkdir(exist_ok=True)
            written.append(Path(shutil.copy(recorded, HISTORIES / recorded.name)))
    await env.shutdown()
    return written


if __name__ == "__main__":
    for path in asyncio.run(record()):
        print(path)
