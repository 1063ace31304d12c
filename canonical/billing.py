"""Billable work, the invoices it becomes, and the cash that settles them."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from canonical.dimensions import DimensionValue
from canonical.enums import InvoiceState
from canonical.money import ExactDecimal, LineRounding, Money, line_amount, total


class TimeEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    task_id: str | None = None
    resource_id: str
    role: str | None = None
    date: date
    hours: ExactDecimal
    billable: bool
    approved: bool
    billed: bool = False
    invoice_number: str | None = None
    notes: str | None = None
    # The PSA's own bill rate on the entry, when it keeps one: what reconciliation values the PSA side at.
    bill_rate: Money | None = None


class Expense(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    resource_id: str | None = None
    date: date
    amount: Money
    category: str | None = None
    billable: bool = True
    approved: bool = True
    billed: bool = False
    invoice_number: str | None = None


class BillingEvent(BaseModel):
    """A reason to bill that is not time: a completed milestone or a retainer month."""

    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    kind: str = Field(description="'milestone' or 'retainer'")
    description: str
    amount: Money
    occurred_on: date


class InvoiceLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    description: str
    quantity: ExactDecimal
    unit_price: Money
    tax_code: str
    account_code: str | None = None
    source_ids: tuple[str, ...] = Field(default=(), description="PSA entry ids billed by this line")
    rounding: LineRounding = Field(default="half_up", description="the booking ERP's line rounding")
    # The project and customer the line is reported under, in the booking ERP's keys (canonical.dimensions).
    dimensions: tuple[DimensionValue, ...] = ()

    @computed_field  # type: ignore[prop-decorator]
    @property
    def amount(self) -> Money:
        # Rounded per line the way the booking ERP does, so our total matches theirs to the cent; rating has
        # already rounded quantity and unit price to what that ERP stores (canonical.money.RoundingRule).
        return line_amount(self.quantity, self.unit_price, self.rounding)


class Invoice(BaseModel):
    """An invoice before posting. `reference` carries our business key into the ERP."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    customer_id: str = Field(description="the ERP's customer id")
    customer_name: str
    project_id: str
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    currency: str
    issue_date: date
    due_date: date
    reference: str
    lines: tuple[InvoiceLine, ...]

    @model_validator(mode="after")
    def _lines_share_currency(self) -> Invoice:
        for index, line in enumerate(self.lines):
            if line.unit_price.currency != self.currency:
                raise ValueError(
                    f"lines[{index}].unit_price is {line.unit_price.currency}, invoice is {self.currency}"
                )
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Money:
        """Net total (before tax)."""
        return total([line.amount for line in self.lines], self.currency)


class Payment(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    invoice_id: str
    amount: Money
    date: date
    reference: str | None = None


class CreditNote(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    invoice_id: str
    amount: Money
    date: date
    number: str | None = None


class InvoiceStatus(BaseModel):
    """An invoice as the ERP sees it now."""

    model_config = ConfigDict(frozen=True)

    erp: str
    invoice_id: str
    number: str
    state: InvoiceState
    total: Money = Field(description="gross total including tax")
    amount_due: Money
    amount_paid: Money
    amount_credited: Money
    due_date: date | None = None
    payments: tuple[Payment, ...] = ()
    credit_notes: tuple[CreditNote, ...] = ()
    amount_overpaid: Money | None = Field(
        default=None,
        description="cash received for this invoice beyond what it owed, not yet refunded or applied "
        "elsewhere (None when the ERP shows none or cannot tell)",
    )


class PostedInvoice(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    invoice_id: str
    number: str
    total: Money = Field(
        description="net total before tax, as the ERP booked it: comparable with Invoice.total"
    )
    state: InvoiceState
    # The whole invoice as the ERP answered the post, where that answer carries it (Xero's does): what is
    # due is then known without asking the ERP again. None where it does not, or the post was found.
    status: InvoiceStatus | None = None


class ReceivablesSummary(BaseModel):
    """What the CRM and PSA are told about an invoice's money."""

    model_config = ConfigDict(frozen=True)

    invoice_id: str
    invoice_number: str
    state: InvoiceState
    total: Money
    amount_due: Money
    amount_paid: Money
    amount_credited: Money
    due_date: date | None = None
    amount_overpaid: Money | None = None

    @classmethod
    def of(cls, status: InvoiceStatus) -> ReceivablesSummary:
        return cls(
            invoice_id=status.invoice_id,
            invoice_number=status.number,
            state=status.state,
            total=status.total,
            amount_due=status.amount_due,
            amount_paid=status.amount_paid,
            amount_credited=status.amount_credited,
            due_date=status.due_date,
            amount_overpaid=status.amount_overpaid,
        )
