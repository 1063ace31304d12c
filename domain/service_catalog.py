"""Productised services: a service code decides a project's structure, never free text.

A template names everything a new project is built from: its tasks, its milestones and (for a fixed fee)
the share of the fee each milestone bills, the billing model, the PSA rate card set it is staffed at,
(for a retainer) the term the contract value is spread over, and the practice the project starts under.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, model_validator

from canonical import BillingModel
from canonical.projects import LateEntryPolicy


class MilestoneShare(BaseModel):
    model_config = ConfigDict(frozen=True)

    milestone: str
    share: Decimal


class ServiceTemplate(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    billing_model: BillingModel
    tasks: tuple[str, ...]
    milestones: tuple[MilestoneShare, ...] = ()
    expense_markup: Decimal = Decimal("0")
    # None: the PSA account's default rate card set (the firm's standard rates).
    rate_card_set: str | None = None
    retainer_months: int | None = None
    # Work approved after its month was invoiced: an adjustment invoice, or the next month's invoice.
    late_entries: LateEntryPolicy = "adjustment_invoice"
    # The practice (service line) a new project of this service is filed under in the PSA, where a person
    # may change it; None: the PSA project starts without one.
    practice: str | None = None

    @model_validator(mode="after")
    def _structure_fits_the_billing_model(self) -> ServiceTemplate:
        if self.billing_model == BillingModel.FIXED_FEE:
            if not self.milestones:
                raise ValueError(f"{self.code}: a fixed-fee service bills by milestone and needs milestones")
            if sum(m.share for m in self.milestones) != 1:
                raise ValueError(f"{self.code}: milestone shares must add up to 1")
        if self.billing_model == BillingModel.RETAINER and not self.retainer_months:
            raise ValueError(f"{self.code}: a retainer needs the number of months it runs")
        return self

    @property
    def milestone_names(self) -> tuple[str, ...]:
        return tuple(m.milestone for m in self.milestones)


CATALOG: dict[str, ServiceTemplate] = {
    template.code: template
    for template in (
        ServiceTemplate(
            code="ADV-TM",
            name="Advisory, time and materials",
            billing_model=BillingModel.TIME_AND_MATERIALS,
            tasks=("Discovery", "Advisory", "Reporting"),
            expense_markup=Decimal("0.10"),
        ),
        ServiceTemplate(
            code="DIG-TM",
            name="Digital delivery, time and materials",
            billing_model=BillingModel.TIME_AND_MATERIALS,
            tasks=("Discovery", "Delivery", "Handover"),
            expense_markup=Decimal("0.10"),
            practice="Digital",
        ),
        ServiceTemplate(
            code="IMP-FF",
            name="Implementation, fixed fee",
            billing_model=BillingModel.FIXED_FEE,
            tasks=("Design", "Build", "Test", "Go-live"),
            milestones=(
                MilestoneShare(milestone="Design sign-off", share=Decimal("0.40")),
                MilestoneShare(milestone="Go-live", share=Decimal("0.60")),
            ),
            rate_card_set="Implementation",
        ),
        ServiceTemplate(
            code="MS-RET",
            name="Managed service, monthly retainer",
            billing_model=BillingModel.RETAINER,
            tasks=("Service delivery",),
            rate_card_set="Managed services",
            retainer_months=12,
            # A retainer customer gets one invoice a month: late work joins the next one.
            late_entries="next_run",
        ),
    )
}


def template_for(service_code: str | None) -> ServiceTemplate | None:
    if service_code is None:
        return None
    return CATALOG.get(service_code)
