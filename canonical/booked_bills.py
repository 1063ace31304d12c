"""Supplier bills as the ERP holds them, read back for reconciliation: what was booked, where, and paid."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from canonical.enums import InvoiceState
from canonical.money import Money
from canonical.reference import BookedLine


class BookedBill(BaseModel):
    """A supplier bill with its lines. `number` is what ps-sync and the PSA know the bill by (the number
    `post_bill` returned), `reference` the reference ps-sync gave it; in Xero and Tryton they are the same.
    Bills carry no tax of their own, so `total` is what the supplier is owed."""

    model_config = ConfigDict(frozen=True)

    erp: str
    bill_id: str
    number: str
    reference: str
    state: InvoiceState
    total: Money
    amount_paid: Money
    supplier_name: str | None = None
    lines: tuple[BookedLine, ...] = ()
