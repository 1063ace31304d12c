"""What month-end reads for one project and period: its recognition terms, approved time to date, cost
rates, milestones, invoices, and the position earlier periods' journals brought it to."""

from __future__ import annotations

from collections import Counter
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canonical import BillingModel, Money, Period
from canonical.money import ExactDecimal, RoundingRule, minor_units, total


class CostRate(BaseModel):
    """What an hour of a person costs the firm from `effective_from` until the next rate takes over."""

    model_config = ConfigDict(frozen=True)

    effective_from: date
    hourly: Money


class CostRateHistory(BaseModel):
    model_config = ConfigDict(frozen=True)

    person: str
    rates: tuple[CostRate, ...]

    @model_validator(mode="after")
    def _one_rate_a_day(self) -> CostRateHistory:
        days = [rate.effective_from for rate in self.rates]
        if len(days) != len(set(days)):
            raise ValueError(f"cost rates of {self.person} name the same effective date twice")
        return self

    def rate_on(self, day: date) -> Money | None:
        """The rate in force on `day`: the latest that took effect on or before it."""
        in_force = [rate for rate in self.rates if rate.effective_from <= day]
        return max(in_force, key=lambda rate: rate.effective_from).hourly if in_force else None


class WorkedTime(BaseModel):
    """An approved time entry (unapproved time is not month-end's to value)."""

    model_config = ConfigDict(frozen=True)

    id: str
    person: str
    date: date
    minutes: int = Field(ge=0)
    # The role the time bills under and its bill rate in force on the day, as rating priced it.
    role: str | None = None
    bill_rate: Money | None = None
    billable: bool = True
    billed: bool = False
    invoice_number: str | None = None

    @property
    def is_billed(self) -> bool:
        # An invoice number is proof enough: the PSA's billed flag can lag the invoice.
        return self.billed or self.invoice_number is not None


class AcceptedMilestone(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    amount: Money
    accepted_on: date | None = None


class Invoiced(BaseModel):
    """A posted invoice's net amount under the project's contract (a credit note: negative)."""

    model_config = ConfigDict(frozen=True)

    number: str
    issued_on: date
    net: Money


class TimeAndMaterials(BaseModel):
    """Revenue is what is invoiced, plus approved unbilled time accrued as WIP at each period end."""

    model_config = ConfigDict(frozen=True)

    method: Literal["time_and_materials"] = "time_and_materials"

    @property
    def billing_model(self) -> BillingModel:
        return BillingModel.TIME_AND_MATERIALS


class PercentageOfCompletion(BaseModel):
    """A fixed fee earned as hours are worked against the budget."""

    model_config = ConfigDict(frozen=True)

    method: Literal["percentage_of_completion"] = "percentage_of_completion"
    fee: Money
    budget_hours: ExactDecimal = Field(gt=0)

    @property
    def billing_model(self) -> BillingModel:
        return BillingModel.FIXED_FEE


class MilestoneAcceptance(BaseModel):
    """A fixed fee earned milestone by milestone, as the customer accepts each."""

    model_config = ConfigDict(frozen=True)

    method: Literal["milestone_acceptance"] = "milestone_acceptance"
    fee: Money

    @property
    def billing_model(self) -> BillingModel:
        return BillingModel.FIXED_FEE


class StraightLineRetainer(BaseModel):
    """A retainer earned evenly: `amount_per_period` a calendar month from `start` to `end` (inclusive)."""

    model_config = ConfigDict(frozen=True)

    method: Literal["straight_line"] = "straight_line"
    amount_per_period: Money
    start: date
    end: date | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> StraightLineRetainer:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"retainer ends {self.end} before it starts {self.start}")
        return self

    @property
    def billing_model(self) -> BillingModel:
        return BillingModel.RETAINER


RecognitionTerms = Annotated[
    TimeAndMaterials | PercentageOfCompletion | MilestoneAcceptance | StraightLineRetainer,
    Field(discriminator="method"),
]


class Position(BaseModel):
    """Where a project's month-end journals have brought it, cumulatively: the next period starts here."""

    model_config = ConfigDict(frozen=True)

    currency: str
    # Revenue recognised to date (time and materials: invoiced plus WIP at the last close).
    recognised: Money
    # Accrued revenue (positive, an asset) or deferred revenue (negative, a liability): recognised less
    # invoiced, as the recognition journals left it.
    revenue_position: Money
    labour_cost: Money

    @classmethod
    def opening(cls, currency: str) -> Position:
        zero = Money.zero(currency)
        return cls(currency=currency, recognised=zero, revenue_position=zero, labour_cost=zero)

    @model_validator(mode="after")
    def _one_currency(self) -> Position:
        for name in ("recognised", "revenue_position", "labour_cost"):
            if getattr(self, name).currency != self.currency:
                raise ValueError(f"position {name} is not in {self.currency}")
        return self


class MonthEndProject(BaseModel):
    """One project's month-end, for one legal entity and period, in the journal's currency."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    project_id: str
    period: str = Field(pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    currency: str
    # How the entity's ERP stores and rounds an invoice line (domain.erp_rounding.rounding_rule): WIP is
    # valued as the invoice that will bill it.
    rounding: RoundingRule
    terms: RecognitionTerms
    # Approved time on the project dated up to the period's end (earlier periods' too: figures are to date).
    time: tuple[WorkedTime, ...] = ()
    cost_rates: tuple[CostRateHistory, ...] = ()
    milestones: tuple[AcceptedMilestone, ...] = ()
    invoices: tuple[Invoiced, ...] = ()
    earlier: Position

    @model_validator(mode="after")
    def _consistent(self) -> MonthEndProject:
        amounts: list[tuple[str, Money]] = [(f"invoice {i.number}", i.net) for i in self.invoices]
        amounts += [(f"milestone {m.id}", m.amount) for m in self.milestones]
        terms = self.terms
        if isinstance(terms, PercentageOfCompletion | MilestoneAcceptance):
            amounts.append(("fee", terms.fee))
        if isinstance(terms, StraightLineRetainer):
            amounts.append(("retainer amount", terms.amount_per_period))
        earlier = self.earlier
        amounts += [
            ("earlier recognised", earlier.recognised),
            ("earlier position", earlier.revenue_position),
        ]
        amounts.append(("earlier labour cost", earlier.labour_cost))
        quantum = Decimal(1).scaleb(-minor_units(self.currency))
        for what, money in amounts:
            if money.currency != self.currency:
                raise ValueError(
                    f"{what} is in {money.currency}, project {self.project_id} in {self.currency}"
                )
            # Each of these is invoiced or was posted, so it is whole minor units; anything finer is a typo
            # that would otherwise surface as a journal that cannot balance at the minor unit.
            if money.amount != money.amount.quantize(quantum):
                raise ValueError(f"{what} {money} is not in whole minor units of {self.currency}")
        keys = {
            "time entry": [entry.id for entry in self.time],
            "milestone": [milestone.id for milestone in self.milestones],
            "invoice": [invoice.number for invoice in self.invoices],
            "cost rate history of person": [history.person for history in self.cost_rates],
        }
        for what, ids in keys.items():
            # The same record twice would be valued twice.
            twice = sorted(key for key, count in Counter(ids).items() if count > 1)
            if twice:
                raise ValueError(f"{what} {', '.join(twice)} is given more than once")
        return self

    @property
    def closing(self) -> Period:
        return Period(value=self.period)

    def time_to_date(self) -> tuple[WorkedTime, ...]:
        """Time dated up to the period's end; later time waits for its own period."""
        end = self.closing.last_day
        return tuple(entry for entry in self.time if entry.date <= end)

    def invoices_to_date(self) -> tuple[Invoiced, ...]:
        end = self.closing.last_day
        return tuple(invoice for invoice in self.invoices if invoice.issued_on <= end)

    def invoiced(self) -> Money:
        """Net invoiced under the contract up to the period's end."""
        return total([invoice.net for invoice in self.invoices_to_date()], self.currency)
