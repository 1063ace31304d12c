"""ErpPaymentPoller on a real Temporal server: Xero sends no payment events, so payments are polled with
If-Modified-Since, and each new one brings its invoice's InvoiceToCash run to check at once."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from runs.payment_feed import ErpPaymentPollerInput, ErpPaymentPollerStatus
from runs.psa_feed import PollNow
from sandboxes.xero.seed import XeroFinanceUser
from workflows.invoice_to_cash import InvoiceToCash
from workflows.payment_feed import ErpPaymentPoller

from ..support.system import System
from .helpers import eventually, stamp
from .test_invoice_to_cash import DAY, _follow_a_new_invoice


async def _start_poller(system: System, **changes: float) -> WorkflowHandle[ErpPaymentPoller, None]:
    # Its own id per test: the business id payment-feed:xero belongs to the running system, not to tests.
    return await system.client.start_workflow(
        ErpPaymentPoller.run,
        ErpPaymentPollerInput(erp="xero", poll_interval_seconds=1, **changes),  # type: ignore[arg-type]
        id=f"payment-feed:xero:{stamp()}",
        task_queue=system.task_queue,
    )


async def test_a_payment_polled_from_xero_settles_a_run_that_would_otherwise_check_tomorrow(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    # No ingress here, so no Xero webhook reaches the run; it would read its invoice again in a day.
    followed = await _follow_a_new_invoice(system, dev_env, poll_seconds=DAY)
    poller = await _start_poller(system, overlap_seconds=5, first_lookback_seconds=0)
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        await eventually(lambda: _polled(poller, 1), what="the first poll")
        payment = await finance.apply_payment(
            followed.input.invoice_id, followed.gross.amount, reference="BACS"
        )
        payment_id = payment["PaymentID"]
        result = await asyncio.wait_for(followed.handle.result(), timeout=30)
        assert result.outcome == "paid" and result.summary.amount_paid == followed.gross
        assert (await followed.handle.query(InvoiceToCash.status)).nudges >= 1

        status: ErpPaymentPollerStatus = await poller.query(ErpPaymentPoller.status)
        assert status.cursor is not None and payment_id in status.cursor.recent
        assert status.invoice_runs_nudged >= 1
        # Polls that overlap the last window list the payment again; it is passed on only once.
        seen = status.payments_seen
        await poller.signal(ErpPaymentPoller.poll_now, PollNow())
        after = await eventually(lambda: _polled(poller, status.polls + 2), what="two more polls")
        assert after.payments_seen == seen
    finally:
        await finance.aclose()
        await poller.terminate("test finished")


async def _polled(poller, polls: int) -> ErpPaymentPollerStatus | None:  # type: ignore[no-untyped-def]
    status: ErpPaymentPollerStatus = await poller.query(ErpPaymentPoller.status)
    return status if status.polls >= polls else None


async def test_a_poller_that_was_down_catches_up_on_payments_made_meanwhile(
    dev_env: WorkflowEnvironment, dev_system: System
) -> None:
    system = dev_system
    followed = await _follow_a_new_invoice(system, dev_env, poll_seconds=DAY)
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        part = Decimal("100.00")
        payment = await finance.apply_payment(followed.input.invoice_id, part, reference="while down")
        payment_id = payment["PaymentID"]
    finally:
        await finance.aclose()
    # Started after the payment, reaching back as a fresh install does: the payment is still passed on.
    poller = await _start_poller(system, first_lookback_seconds=600)
    try:
        await followed.seen(
            "the payment made while the poller was down", lambda s: s.amount_paid.amount == part
        )
        status: ErpPaymentPollerStatus = await poller.query(ErpPaymentPoller.status)
        assert status.cursor is not None and payment_id in status.cursor.recent
    finally:
        await poller.terminate("test finished")
