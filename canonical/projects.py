"""Opportunities and the delivery structures they become."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from canonical.dimensions import ErpProject
from canonical.enums import BillingModel, ProjectStatus
from canonical.money import Money
from canonical.parties import Account, Contact

LateEntryPolicy = Literal["adjustment_invoice", "next_run"]


class Opportunity(BaseModel):
    """A CRM opportunity with the fields our processes read; readiness is judged elsewhere."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    stage: str
    is_won: bool
    close_date: date | None = None
    amount: Money | None = None
    # The most a time-and-materials deal may bill, in the deal's currency; None: uncapped.
    not_to_exceed: Money | None = None
    account: Account
    bill_to_contact: Contact | None = None
    legal_entity: str | None = None
    currency: str | None = None
    tax_code: str | None = None
    billing_model: BillingModel | None = None
    service_code: str | None = None
    project_manager: str | None = None
    psa_project_id: str | None = None
    erp_customer_id: str | None = None
    # The CRM's modification stamp when read (Salesforce SystemModstamp): names a change to a won deal.
    modified_at: datetime | None = None
    # The day a change order takes effect, when the deal says; None: the day the change arrived.
    amendment_effective_date: date | None = None


class Resource(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    role: str | None = None
    email: str | None = None


class Task(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    name: str
    billable: bool = True


class Milestone(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    project_id: str
    name: str
    amount: Money | None = None
    due_date: date | None = None
    completed_on: date | None = None


class RateCardRate(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: str
    rate: Money


class RateCardVersion(BaseModel):
    model_config = ConfigDict(frozen=True)

    effective_from: date
    rates: tuple[RateCardRate, ...]


class RateCard(BaseModel):
    """Hourly rates by role, in dated versions: an entry is rated by the version in force on its date."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    currency: str
    versions: tuple[RateCardVersion, ...]

    def rate_for(self, role: str, on: date) -> Money | None:
        in_force = [v for v in self.versions if v.effective_from <= on]
        if not in_force:
            return None
        version = max(in_force, key=lambda v: v.effective_from)
        for rate in version.rates:
            if rate.role == role:
                return rate.rate
        return None


class MilestoneCharge(BaseModel):
    """One line of a fixed-fee billing schedule: what completing the milestone bills."""

    model_config = ConfigDict(frozen=True)

    milestone: str
    amount: Money


class Contract(BaseModel):
    """The commercial terms a project is billed under."""

    model_config = ConfigDict(frozen=True)

    legal_entity: str
    currency: str
    billing_model: BillingModel
    tax_code: str
    expense_markup: Decimal = Decimal("0")
    not_to_exceed: Money | None = None
    retainer_amount: Money | None = None
    payment_terms_days: int = 30
    # Fixed fee: the fee split over milestones, summing to the fee exactly.
    billing_schedule: tuple[MilestoneCharge, ...] = ()
    # Work approved after its period was billed: an adjustment invoice for that period, or the next run.
    late_entries: LateEntryPolicy = "adjustment_invoice"
    # Re-billed expenses may carry another tax than fees (e.g. zero-rated disbursements); None: `tax_code`.
    expense_tax_code: str | None = None


class ProjectSpec(BaseModel):
    """What to create in the PSA; `external_ref` is our key, so a retried create finds the first one."""

    model_config = ConfigDict(frozen=True)

    external_ref: str
    name: str
    customer_name: str
    contract: Contract
    service_code: str
    start_date: date | None = None
    budget: Money | None = None
    project_manager: str | None = None
    tasks: tuple[str, ...] = ()
    milestones: tuple[str, ...] = ()
    # The PSA rate card set the service is staffed at; None means the account's default set.
    rate_card_set: str | None = None
    # The firm's practice (service line) the service belongs to, set on the new PSA project; None: none.
    practice: str | None = None


class Project(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    external_ref: str | None = None
    status: ProjectStatus = ProjectStatus.ACTIVE
    legal_entity: str | None = None
    currency: str | None = None
    billing_model: BillingModel | None = None
    rate_card_id: str | None = None
    customer_name: str | None = None
    tasks: tuple[Task, ...] = Field(default=())
    milestones: tuple[Milestone, ...] = Field(default=())
    project_manager: str | None = Field(default=None, description="the project lead's name in the PSA")
    # The practice (service line) the PSA files the project under; None: the PSA keeps none for it.
    practice: str | None = None


class ProjectContract(BaseModel):
    """Everything billing needs to know about a project, captured when the deal became a project."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    psa: str
    crm: str
    opportunity_id: str
    account_id: str
    account_owner_id: str | None = None
    customer_name: str
    erp: str
    erp_customer_id: str
    contract: Contract
    # The productised service the deal was sold as: its revenue account when no role mapping claims the time.
    service_code: str | None = None
    # The project's side of the ERP's books, made at closed-won: the dimensions its invoice lines carry.
    erp_project: ErpProject | None = None
    # The deal's amount the PSA project is budgeted at; None: recorded before budgets were kept here.
    budget: Money | None = None
