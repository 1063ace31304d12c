"""Record a MonthEndClose history for the replay test: `python -m tests.replay.record_month_end [DIRECTORY]`.

Writes only that one history, into DIRECTORY (a new temporary one by default; the histories folder is left
as it is, so nothing recorded earlier is lost). A time-and-materials project with approved, unbilled time and
a consultant's cost rate is closed on the UK entity: WIP accrual, its reversal and labour cost are posted to
Xero; after an hour more is approved the same period is closed again, and that run (the one recorded) posts
only the adjustments.
"""

from __future__ import annotations

import asyncio
import re
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from canonical import Money, Period
from devstack.story import working_days
from runs.month_end_close import MonthEndCloseInput
from sandboxes.kantata.seed import TimeLog
from workflows.month_end_close import MonthEndClose, MonthEndCloseResult

from ..support.system import System, running_system, serving_sandboxes
from ..support.temporal import start_dev_server
from ..workflows.billing_steps import deal_for, kantata, log_approved, staff
from ..workflows.test_month_end_close import map_month_end

PERIOD = Period(value="2026-10")


async def close(system: System, workflow_id: str) -> MonthEndCloseResult:
    result: MonthEndCloseResult = await system.client.execute_workflow(
        MonthEndClose.run,
        MonthEndCloseInput(legal_entity="UK", period=PERIOD.value, psa=system.settings.psa),
        id=workflow_id,
        task_queue=system.task_queue,
    )
    return result


async def record() -> tuple[str, str]:
    """The recorded run's workflow id and its history as JSON."""
    env = await start_dev_server()
    try:
        with tempfile.TemporaryDirectory() as tmp, serving_sandboxes() as sandboxes:
            async with running_system(env.client, Path(tmp), sandboxes) as system:
                map_month_end(system, "UK")
                project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
                person = await staff(system, project, "Consultant")
                async with kantata(system) as seeder:
                    await seeder.cost_rate(person.user_id, Money.of("61.37", "GBP"))
                day = working_days(PERIOD, 1)[0]
                await log_approved(system, project, [TimeLog(person.user_id, day, 445)])
                first = await close(system, f"month-end-close:UK:{PERIOD.value}")
                assert len(first.postings) == 3, first.postings
                await log_approved(system, project, [TimeLog(person.user_id, day, 60)])
                workflow_id = f"month-end-close:UK:{PERIOD.value}:re-run"
                again = await close(system, workflow_id)
                assert {p.reference.rsplit("-", 1)[-1] for p in again.postings} == {"ADJ1"}, again.postings
                history = await system.client.get_workflow_handle(workflow_id).fetch_history()
                return workflow_id, history.to_json()
    finally:
        await env.shutdown()


def write(directory: Path, workflow_id: str, history: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (re.sub(r"[^A-Za-z0-9_.-]+", "_", f"MonthEndClose-{workflow_id}") + ".json")
    path.write_text(history)
    return path


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="histories-"))
    print(write(target, *asyncio.run(record())))
