"""Reference data read from the source systems (ReferenceSync), invoices as the ERP books them
(Reconciliation), and the fields a person may correct on a deal (the exceptions queue)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

from canonical.dimensions import DimensionValue
from canonical.enums import BillingModel, InvoiceState
from canonical.money import ExactDecimal, Money

_CODE = r"^[A-Z]{3}$"


class CurrencyRate(BaseModel):
    """A currency the ERP knows. `rate` is one unit of `code` in the ERP's base currency, when the ERP
    exposes one (Xero's API does not publish its exchange rates, so its foreign currencies carry None)."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(pattern=_CODE)
    name: str | None = None
    rate: ExactDecimal | None = Field(default=None, gt=0)


class TaxRate(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str = Field(min_length=1, description="the name ps-sync and the entity settings use")
    name: str = Field(min_length=1)
    percent: ExactDecimal = Field(ge=0, description="20 means 20 %")
    active: bool = True


class LedgerAccount(BaseModel):
    """An account in the ERP's chart of accounts."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    type: str = Field(min_length=1)
    active: bool = True


class CatalogItem(BaseModel):
    """A product or service item invoices can be raised against."""

    model_config = ConfigDict(frozen=True)

    code: str = Field(min_length=1)
    name: str = Field(min_length=1)


class ErpReferenceData(BaseModel):
    model_config = ConfigDict(frozen=True)

    erp: str
    base_currency: str = Field(pattern=_CODE)
    as_of: date
    currencies: tuple[CurrencyRate, ...] = ()
    tax_rates: tuple[TaxRate, ...] = ()
    accounts: tuple[LedgerAccount, ...] = ()
    items: tuple[CatalogItem, ...] = ()


class Employee(BaseModel):
    """A person who books time in the PSA, with what an hour of theirs costs the firm, per currency."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str = Field(min_length=1)
    email: str | None = None
    role: str | None = None
    cost_rates: tuple[Money, ...] = ()
    active: bool = True

    def cost_rate_in(self, currency: str) -> Money | None:
        return next((rate for rate in self.cost_rates if rate.currency == currency), None)


class BookedLine(BaseModel):
    """An invoice line as the ERP holds it; `amount` is net of tax."""

    model_config = ConfigDict(frozen=True)

    description: str
    quantity: ExactDecimal
    amount: Money
    # Where the ERP booked the line: its account code and its dimensions (what reconciliation checks).
    account_code: str | None = None
    dimensions: tuple[DimensionValue, ...] = ()


class BookedInvoice(BaseModel):
    """A customer invoice as the ERP holds it, with its lines (net amounts)."""

    model_config = ConfigDict(frozen=True)

    erp: str
    invoice_id: str
    number: str
    reference: str
    state: InvoiceState
    net_total: Money
    lines: tuple[BookedLine, ...] = ()


class OpportunityFix(BaseModel):
    """Corrected values for a deal's fields, in canonical names; only the fields given are written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    legal_entity: str | None = Field(default=None, min_length=1, max_length=16)
    currency: str | None = Field(default=None, pattern=_CODE)
    tax_code: str | None = Field(default=None, min_length=1, max_length=64)
    billing_model: BillingModel | None = None
    service_code: str | None = Field(default=None, min_length=1, max_length=64)
    project_manager: str | None = Field(default=None, min_length=1, max_length=255)

    def given(self) -> dict[str, object]:
        return self.model_dump(exclude_none=True)
