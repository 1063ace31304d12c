"""Payables: what the firm owes its people (reimbursable expenses) and its suppliers (costs held in the PSA),
and the bills the ERP books for them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, computed_field

from canonical.dimensions import DimensionValue
from canonical.enums import InvoiceState
from canonical.money import ExactDecimal, Money


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


class SubcontractedTime(BaseModel):
    """Approved time a subcontractor logged: what the subcontracting firm (`supplier`) bills the firm, at the
    person's cost rate when the time was logged (None when the PSA held no cost rate in the project's
    currency)."""

    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    person_id: str
    person_name: str
    # The subcontracting firm's name, as the PSA holds it on the person.
    supplier: str = Field(min_length=1)
    role: str | None = None
    date: date
    minutes: int = Field(ge=0)
    # The project's currency: the currency the time is costed (and billed) in.
    currency: str
    cost_rate: Money | None
    # The ERP bill number the entry was put on, and whether that bill has been paid.
    bill_number: str | None = None
    paid: bool = False


class Supplier(BaseModel):
    """Who a bill is owed to. `key` is ours and stable (`person:{psa}:{id}` or `vendor:{name}`): the ERP's
    contact carries it, so the same supplier is found again instead of created twice."""

    model_config = ConfigDict(frozen=True)

    key: str = Field(min_length=1, max_length=50)
    name: str = Field(min_length=1)
    email: str | None = None


class BillLine(BaseModel):
    """One line of a bill: an expense (quantity 1 at its amount) or a subcontractor's time on one project at
    one cost rate (quantity the hours as the ERP stores them, `unit_price` the cost rate). `amount` is what
    the ERP books for the line, rounded once as it rounds (domain.payables computes it)."""

    model_config = ConfigDict(frozen=True)

    description: str
    amount: Money
    account_code: str
    # The PSA expense the line pays for; its receipt is referenced in the description.
    expense_id: str | None = None
    # The PSA time entries the line pays for (subcontracted time).
    time_entry_ids: tuple[str, ...] = ()
    quantity: ExactDecimal = Decimal(1)
    # None: the line's amount is its unit price (an expense).
    unit_price: Money | None = None
    # The project the cost is for, in the booking ERP's keys (canonical.dimensions).
    dimensions: tuple[DimensionValue, ...] = ()

    @property
    def unit_amount(self) -> Money:
        return self.unit_price if self.unit_price is not None else self.amount

    @property
    def source_ids(self) -> tuple[str, ...]:
        """What the line pays for, as the bill's key counts it: expense ids, and time entries as `time:{id}`
        so that an expense and a time entry can never be taken for one another."""
        expense = (self.expense_id,) if self.expense_id is not None else ()
        return expense + tuple(f"time:{entry_id}" for entry_id in self.time_entry_ids)


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
