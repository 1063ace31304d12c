"""What billing reads from Kantata besides the work itself: who is staffed on a project, and which fixed-fee
milestones are still unbilled; and how a billed milestone carries the ERP invoice number."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from canonical import BillingModel, Contract, MilestoneCharge, Money, ProjectSpec
from connectors.errors import Conflict, NotFound
from connectors.kantata import KantataConnector
from sandboxes.kantata.seed import KantataSeeder

from .conftest import CURRENCY, People


def _fixed_fee_spec() -> ProjectSpec:
    key = uuid.uuid4().hex[:10]
    return ProjectSpec(
        external_ref=f"salesforce:006{key}",
        name=f"Implementation {key}",
        customer_name="Acme Ltd",
        contract=Contract(
            legal_entity="UK",
            currency=CURRENCY,
            billing_model=BillingModel.FIXED_FEE,
            tax_code="OUTPUT2",
            billing_schedule=(
                MilestoneCharge(milestone="Design sign-off", amount=Money.of("4000", CURRENCY)),
                MilestoneCharge(milestone="Go-live", amount=Money.of("6000", CURRENCY)),
            ),
        ),
        service_code="IMP-FF",
        start_date=date(2024, 5, 1),
        budget=Money.of("10000", CURRENCY),
        tasks=("Build", "Go-live"),
        milestones=("Design sign-off", "Go-live"),
    )


async def test_project_resources_are_the_staffed_people_in_their_project_roles(
    psa: KantataConnector, seeder: KantataSeeder, people: People
) -> None:
    project = await psa.ensure_project(_fixed_fee_spec())
    # Kantata makes the project's creator (ps-sync's API user) a participant; it has no role to bill at.
    (creator,) = await psa.project_resources(project.id)
    assert creator.role is None
    await seeder.add_to_project(project.id, [people.consultant, people.senior])

    staffed = {r.id: (r.name, r.role) for r in await psa.project_resources(project.id) if r != creator}

    assert staffed == {
        people.consultant.user_id: ("Ada Lovelace", "Consultant"),
        people.senior.user_id: ("Grace Hopper", "Senior Consultant"),
    }


async def test_unbilled_milestones_carry_their_completion_and_budget_until_marked_billed(
    psa: KantataConnector, seeder: KantataSeeder
) -> None:
    project = await psa.ensure_project(_fixed_fee_spec())
    design = await seeder.complete_milestone(project.id, "Design sign-off")

    milestones = {m.name: m for m in await psa.unbilled_milestones(project.id)}
    assert set(milestones) == {"Design sign-off", "Go-live"}
    assert milestones["Design sign-off"].completed_on is not None
    assert milestones["Go-live"].completed_on is None
    assert milestones["Design sign-off"].amount == Money.of("4000", CURRENCY)

    await psa.mark_billed(
        time_entry_ids=[], expense_ids=[], invoice_number="INV-0042", milestone_ids=[design]
    )
    # A retry with the same number is a no-op; another number for a billed milestone is a conflict.
    await psa.mark_billed(
        time_entry_ids=[], expense_ids=[], invoice_number="INV-0042", milestone_ids=[design]
    )
    with pytest.raises(Conflict, match="INV-0042"):
        await psa.mark_billed(
            time_entry_ids=[], expense_ids=[], invoice_number="INV-0043", milestone_ids=[design]
        )

    assert [m.name for m in await psa.unbilled_milestones(project.id)] == ["Go-live"]


async def test_marking_an_unknown_milestone_billed_is_not_found(psa: KantataConnector) -> None:
    with pytest.raises(NotFound, match="41999999"):
        await psa.mark_billed(
            time_entry_ids=[], expense_ids=[], invoice_number="INV-0044", milestone_ids=["41999999"]
        )
