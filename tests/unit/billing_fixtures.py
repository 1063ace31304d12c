"""Small canonical records the billing unit tests share."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from canonical import (
    BillingModel,
    Contract,
    Expense,
    LegalEntity,
    Money,
    Project,
    RateCard,
    RateCardRate,
    RateCardVersion,
    Resource,
    Task,
    TimeEntry,
)
from domain.billing_validation import BillingContext

UK = LegalEntity(
    code="UK",
    name="Northwind Consulting Ltd",
    erp="xero",
    currency="GBP",
    countries=("GB",),
    tax_codes=("OUTPUT2", "ZERORATEDOUTPUT"),
    default_tax_code="OUTPUT2",
    approval_threshold=Money.of("5000", "GBP"),
)
CONTRACT = Contract(
    legal_entity="UK",
    currency="GBP",
    billing_model=BillingModel.TIME_AND_MATERIALS,
    tax_code="OUTPUT2",
    expense_markup=Decimal("0.10"),
)
CARD = RateCard(
    id="rc1",
    name="UK 2026",
    currency="GBP",
    versions=(
        RateCardVersion(
            effective_from=date(2026, 1, 1),
            rates=(
                RateCardRate(role="Consultant", rate=Money.of("100", "GBP")),
                RateCardRate(role="Senior Consultant", rate=Money.of("150", "GBP")),
            ),
        ),
        RateCardVersion(
            effective_from=date(2026, 10, 15),
            rates=(RateCardRate(role="Consultant", rate=Money.of("110", "GBP")),),
        ),
    ),
)
PROJECT = Project(
    id="p1",
    name="Advisory",
    tasks=(
        Task(id="t1", project_id="p1", name="Advisory"),
        Task(id="t2", project_id="p1", name="Internal", billable=False),
    ),
)
RESOURCES = (
    Resource(id="u1", name="Omar Haddad", role="Consultant"),
    Resource(id="u2", name="Dana Whitfield", role="Senior Consultant"),
    Resource(id="u3", name="New Starter", role=None),
)


def context(**changes: Any) -> BillingContext:
    base = BillingContext(project=PROJECT, resources=RESOURCES, rate_card=CARD, contract=CONTRACT, entity=UK)
    contract_changes = changes.pop("contract", None)
    if contract_changes:
        changes["contract"] = CONTRACT.model_copy(update=contract_changes)
    return base.model_copy(update=changes)


def entry(
    entry_id: str,
    *,
    role: str | None = "Consultant",
    resource: str = "u1",
    task: str | None = "t1",
    day: date = date(2026, 10, 1),
    hours: str = "8",
    billable: bool = True,
    approved: bool = True,
    project: str = "p1",
) -> TimeEntry:
    return TimeEntry(
        id=entry_id,
        project_id=project,
        task_id=task,
        resource_id=resource,
        role=role,
        date=day,
        hours=Decimal(hours),
        billable=billable,
        approved=approved,
    )


def expense(
    expense_id: str, amount: str = "200", *, currency: str = "GBP", category: str = "Travel"
) -> Expense:
    return Expense(
        id=expense_id,
        project_id="p1",
        resource_id="u1",
        date=date(2026, 10, 5),
        amount=Money.of(amount, currency),
        category=category,
    )
