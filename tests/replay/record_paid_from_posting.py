"""Record an InvoiceToCash history that starts from Xero's answer to the post:
`python -m tests.replay.record_paid_from_posting`.

Writes only that history, beside the others (nothing is wiped): a UK invoice is followed from what the post
answered (pushed to the PSA and CRM without reading it back), paid in full in the Xero sandbox, and the run
ends paid after the webhook's nudge.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from sandboxes.xero.seed import XeroFinanceUser

from ..support.system import running_system, serving_sandboxes
from ..support.temporal import target_of
from ..workflows.test_invoice_to_cash import _follow_a_new_invoice
from .recording import on_a_dev_server, write_history

NAME = "InvoiceToCash-paid-from-posting_recorded_2026-12-07.json"


async def play_paid_from_posting(env: WorkflowEnvironment, directory: Path) -> Path:
    with serving_sandboxes() as sandboxes:
        async with running_system(env.client, directory, sandboxes, temporal_target=target_of(env)) as system:
            followed = await _follow_a_new_invoice(system, env, from_posting=True)
            assert followed.input.as_posted is not None
            finance = XeroFinanceUser.from_settings(system.settings)
            try:
                await finance.apply_payment(
                    followed.input.invoice_id, followed.gross.amount, reference="BACS"
                )
            finally:
                await finance.aclose()
            await followed.nudge()
            result = await followed.handle.result()
            assert result.outcome == "paid"
            history = await followed.handle.fetch_history()
    return write_history(history, NAME)


async def main() -> Path:
    return await on_a_dev_server(play_paid_from_posting)


if __name__ == "__main__":
    print(asyncio.run(main()))
