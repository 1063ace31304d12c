"""What a ready opportunity becomes: the PSA project spec and the contract billing will read.

Everything structural comes from the service template; the opportunity only contributes its names,
dates, money and people.
"""

from __future__ import annotations

from decimal import Decimal

from canonical import (
    BillingModel,
    Contract,
    LegalEntity,
    MilestoneCharge,
    Money,
    Opportunity,
    ProjectSpec,
)
from domain.service_catalog import ServiceTemplate, template_for


class NotReady(ValueError):
    """The opportunity lacks what readiness should have caught; raised rather than guessing."""


def billing_schedule(template: ServiceTemplate, fee: Money) -> tuple[MilestoneCharge, ...]:
    """The fee split by the template's shares, each rounded to the cent; the last milestone takes the
    rounding remainder, so the schedule always adds up to the fee exactly."""
    if not template.milestones:
        return ()
    charges: list[MilestoneCharge] = []
    billed = Money.zero(fee.currency)
    for share in template.milestones[:-1]:
        amount = fee.times(share.share).rounded()
        charges.append(MilestoneCharge(milestone=share.milestone, amount=amount))
        billed = billed + amount
    charges.append(MilestoneCharge(milestone=template.milestones[-1].milestone, amount=fee - billed))
    return tuple(charges)


def monthly_retainer(template: ServiceTemplate, contract_value: Money) -> Money:
    """The contract value spread evenly over the template's term, rounded to the cent (half-up)."""
    if not template.retainer_months:
        raise NotReady(f"service {template.code} is not a retainer")
    return Money(
        amount=contract_value.amount / Decimal(template.retainer_months), currency=contract_value.currency
    ).rounded()


def not_to_exceed(opportunity: Opportunity, template: ServiceTemplate) -> Money | None:
    """The most the customer pays: a fixed fee is its own cap; time and materials is capped when the deal
    was sold with a not-to-exceed; a retainer's fee already bounds each month."""
    if template.billing_model == BillingModel.FIXED_FEE:
        return opportunity.amount
    if template.billing_model != BillingModel.TIME_AND_MATERIALS or opportunity.not_to_exceed is None:
        return None
    cap = opportunity.not_to_exceed
    # Billing compares the cap with invoices in the contract's currency; a cap in another would never bite.
    if cap.currency != opportunity.currency:
        raise NotReady(
            f"opportunity {opportunity.id} has its not-to-exceed in {cap.currency}, not the deal's "
            f"{opportunity.currency}"
        )
    # A zero or negative cap would hold back every hour, which no one sells; more likely a data error.
    if cap.amount <= 0:
        raise NotReady(f"opportunity {opportunity.id} has a not-to-exceed of {cap}")
    return cap


def project_spec(crm: str, opportunity: Opportunity, entity: LegalEntity) -> ProjectSpec:
    template = template_for(opportunity.service_code)
    if template is None or opportunity.tax_code is None or opportunity.currency is None:
        raise NotReady(f"opportunity {opportunity.id} has no known service code, tax code or currency")
    fee = opportunity.amount
    schedule: tuple[MilestoneCharge, ...] = ()
    retainer: Money | None = None
    if template.billing_model == BillingModel.FIXED_FEE:
        if fee is None:
            raise NotReady(f"fixed-fee opportunity {opportunity.id} has no amount")
        schedule = billing_schedule(template, fee)
    elif template.billing_model == BillingModel.RETAINER:
        if fee is None:
            raise NotReady(f"retainer opportunity {opportunity.id} has no amount")
        retainer = monthly_retainer(template, fee)
    return ProjectSpec(
        external_ref=f"{crm}:{opportunity.id}",
        name=opportunity.name,
        customer_name=opportunity.account.name,
        contract=Contract(
            legal_entity=entity.code,
            currency=opportunity.currency,
            billing_model=template.billing_model,
            tax_code=opportunity.tax_code,
            expense_markup=template.expense_markup,
            not_to_exceed=not_to_exceed(opportunity, template),
            retainer_amount=retainer,
            payment_terms_days=entity.payment_terms_days,
            billing_schedule=schedule,
            late_entries=template.late_entries,
        ),
        service_code=template.code,
        start_date=opportunity.close_date,
        budget=fee,
        project_manager=opportunity.project_manager,
        tasks=template.tasks,
        milestones=template.milestone_names,
        rate_card_set=template.rate_card_set,
        practice=template.practice,
    )
