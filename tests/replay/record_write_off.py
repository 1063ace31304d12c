"""Record an InvoiceToCash history with finance's write-off: `python -m tests.replay.record_write_off`.

Writes only that history, beside the others (nothing is wiped): a UK invoice is followed, partly paid, the
shipped `write_off` signal arrives and is ignored (audited), a write-off naming another amount is refused,
and the write-off naming what is due is taken as an update and credited in the Xero sandbox.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from canonical import Money
from runs.invoice_to_cash import WriteOffRequest
from sandboxes.xero.seed import XeroFinanceUser
from workflows.invoice_to_cash import InvoiceToCash

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import target_of
from ..workflows.test_invoice_to_cash import _follow_a_new_invoice
from .recording import on_a_dev_server, write_history

NAME = "InvoiceToCash-write-off_recorded_2026-12-07.json"


async def play_write_off(env: WorkflowEnvironment, directory: Path) -> Path:
    with serving_sandboxes() as sandboxes:
        async with running_system(env.client, directory, sandboxes, temporal_target=target_of(env)) as system:
            followed = await _follow_a_new_invoice(system, env)
            currency = followed.gross.currency
            finance = XeroFinanceUser.from_settings(system.settings)
            try:
                await finance.apply_payment(followed.input.invoice_id, Decimal("250.00"), reference="part")
            finally:
                await finance.aclose()
            await followed.nudge()
            due = followed.gross - Money.of("250.00", currency)
            await followed.seen("the partial payment", lambda s: s.amount_due == due)
            await followed.handle.signal(
                InvoiceToCash.write_off, WriteOffRequest(actor="claimed.by.body", reason="bad debt")
            )
            try:
                await followed.handle.execute_update(
                    InvoiceToCash.write_off_invoice,
                    WriteOffRequest(actor="finance.lead", reason="bad debt", expected_due=followed.gross),
                )
            except WorkflowUpdateFailedError:
                pass
            else:
                raise AssertionError("a write-off of another amount than is due was taken")
            await followed.handle.execute_update(
                InvoiceToCash.write_off_invoice,
                WriteOffRequest(actor="finance.lead", reason="customer in administration", expected_due=due),
            )
            result = await followed.handle.result()
            assert result.outcome == "written_off" and result.written_off == due
            history = await followed.handle.fetch_history()
    return write_history(history, NAME)


async def main() -> Path:
    return await on_a_dev_server(play_write_off)


if __name__ == "__main__":
    print(asyncio.run(main()))
