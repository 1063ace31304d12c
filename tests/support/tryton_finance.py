"""What a Tryton finance user does that ps-sync never does itself: register a customer's overpayment.

It drives Tryton's own pay wizard (account.invoice.pay) over the connector's JSON-RPC session, answering
its question with "Overpayment", exactly as the client's Pay button does.
"""

from __future__ import annotations

from canonical import Money
from connectors.tryton.connector import TrytonConnector
from connectors.tryton.rpc import next_view_state, view_values


async def register_overpayment(
    tryton: TrytonConnector, invoice_id: str, amount: Money, *, reference: str
) -> None:
    context = {
        "active_model": "account.invoice",
        "active_id": int(invoice_id),
        "active_ids": [int(invoice_id)],
    }
    async with tryton.rpc.wizard_session("account.invoice.pay", context=context) as wizard:
        start = await wizard.start()
        asked = await wizard.execute(
            "choice",
            {
                "start": {
                    **view_values(start),
                    "amount": amount.amount,
                    "payment_method": await tryton.books.payment_method(),
                    "description": reference,
                }
            },
        )
        if next_view_state(asked) != "ask":
            raise AssertionError(f"Tryton did not ask how to book {amount} against invoice {invoice_id}")
        await wizard.execute("pay", {"ask": {**view_values(asked), "type": "overpayment"}})
