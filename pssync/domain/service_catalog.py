"""Productised services: a service code decides a project's structure, never free text."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from pssync.canonical import BillingModel


class ServiceTemplate(BaseModel):
    model_config = ConfigDict(frozen=True)

    code: str
    name: str
    billing_model: BillingModel
    tasks: tuple[str, ...]
    milestones: tuple[str, ...] = ()
    expense_markup: Decimal = Decimal("0")


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
            code="IMP-FF",
            name="Implementation, fixed fee",
            billing_model=BillingModel.FIXED_FEE,
            tasks=("Design", "Build", "Test", "Go-live"),
            milestones=("Design sign-off", "Go-live"),
        ),
        ServiceTemplate(
            code="MS-RET",
            name="Managed service, monthly retainer",
            billing_model=BillingModel.RETAINER,
            tasks=("Service delivery",),
        ),
    )
}


def template_for(service_code: str | None) -> ServiceTemplate | None:
    if service_code is None:
        return None
    return CATALOG.get(service_code)
