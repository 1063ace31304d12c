"""How an invoice ended, read from what the ERP says about it now.

- voided: the ERP voided (or deleted) it.
- credited: credit notes settled it in full and no cash came in (a cancellation by credit note).
- paid: nothing is due any more and cash came in (credit notes may have settled part of it).
- open: something is still due.

Overpayment is money received for the invoice beyond what it owed: the ERP's `amount_overpaid` where it
reports one, else whatever payments and credits exceed the gross total. Tryton's pay wizard keeps the
excess of an overpayment in the payment's own move (the connector reports it); Xero refuses a payment above
the amount due and books the excess as a separate Overpayment on the contact, which belongs to no invoice,
so it is not seen here.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from canonical import InvoiceState, Money, ReceivablesSummary

Outcome = Literal["open", "paid", "credited", "voided", "written_off"]


class Settlement(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    overpaid: Money | None = None

    @property
    def final(self) -> bool:
        return self.outcome != "open"


def settlement(summary: ReceivablesSummary) -> Settlement:
    if summary.state == InvoiceState.VOIDED:
        return Settlement(outcome="voided")
    if summary.state == InvoiceState.WRITTEN_OFF:
        return Settlement(outcome="written_off")
    excess = summary.amount_paid + summary.amount_credited - summary.total
    overpaid = summary.amount_overpaid or (excess if excess.amount > 0 else None)
    settled = summary.state == InvoiceState.PAID or (
        summary.state == InvoiceState.AWAITING_PAYMENT and summary.amount_due.amount <= 0
    )
    if not settled:
        return Settlement(outcome="open", overpaid=overpaid)
    if summary.amount_paid.is_zero() and not summary.amount_credited.is_zero():
        return Settlement(outcome="credited", overpaid=overpaid)
    return Settlement(outcome="paid", overpaid=overpaid)
