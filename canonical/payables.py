"""Payables: what the firm owes its people (reimbursable expenses) and its suppliers (costs held in the PSA),
and the bills the ERP books for them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from canonical.enums import InvoiceState
from canonical.money import Money


class PayableExpense(BaseModel):
    """An approved expense someone is owed for: the person who paid it (reimbursable) or its vendor."""

    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    person_id: str
    person_name: str
    person_email: str | None = None
    date: date
    amount: Money
    category: str | None = None
    notes: str | None = None
    reimbursable: bool = False
    # The supplier the PSA names on the expense; a vendor's expense is owed to the vendor, not the person.
    vendor: str | None = None
    # Where the receipt lives: the PSA's own record of the expense, which holds the receipt.
    receipt_ref: str | None = None
    # The ERP bill number the expense was put on, and whether that bill has been paid.
    bill_number: str | None = None
    reimbursed: bool = False


class Supplier(BaseModel):
    """Who a bill is owed to. `key` is ours and stable (`person:{psa}:{id}` or `vendor:{name}`): the ERP's
    contact carries it, so the same supplier is found again instead of created twice."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1)
    email: str | None = None


class BillLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    description: str
    amount: Money
    account_code: str
    # The PSA expense the line pays for; its receipt is referenced in the description.
    expense_id: str


class Bill(BaseModel):
    """A supplier bill (Xero ACCPAY invoice, Tryton supplier invoice). Amounts are what the supplier paid,
    so lines carry no tax of their own (the receipt's tax is the supplier's)."""

    model_config = ConfigDict(frozen=True)

    reference: str = Field(min_length=1, max_length=255)
    legal_entity: str
    supplier_id: str
    supplier_name: str
    currency: str
    issue_date: date
    due_date: date
    lines: tuple[BillLine, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Money:
        return Money(
            amount=sum((line.amount.amount for line in self.lines), Decimal(0)), currency=self.currency
        )


class PostedBill(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    bill_id: str
    number: str
    total: Money
    state: InvoiceState


class BillStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    bill_id: str
    number: str
    state: InvoiceState
    total: Money
    amount_paid: Money
