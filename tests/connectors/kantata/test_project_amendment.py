"""An amended contract brought to the Kantata project: budget, milestones added, re-priced and archived."""

from __future__ import annotations

from canonical import MilestoneCharge, Money
from canonical.contract_versions import ProjectAmendment
from connectors.kantata import KantataConnector
from sandboxes.kantata.seed import KantataSeeder

from .conftest import CURRENCY
from .test_billing_reads import _fixed_fee_spec


async def test_amending_sets_the_budget_and_milestones_and_a_repeat_finds_nothing_to_do(
    psa: KantataConnector, seeder: KantataSeeder
) -> None:
    project = await psa.ensure_project(_fixed_fee_spec())
    await seeder.complete_milestone(project.id, "Design sign-off")
    amendment = ProjectAmendment(
        project_id=project.id,
        budget=Money.of("13000", CURRENCY),
        # Go-live is replaced by UAT and Hypercare; Design sign-off is completed, so it stays whatever.
        milestones=("Design sign-off", "UAT", "Hypercare"),
        billing_schedule=(
            MilestoneCharge(milestone="Design sign-off", amount=Money.of("4000", CURRENCY)),
            MilestoneCharge(milestone="UAT", amount=Money.of("6500.50", CURRENCY)),
            MilestoneCharge(milestone="Hypercare", amount=Money.of("2499.50", CURRENCY)),
        ),
    )

    done = await psa.amend_project(amendment)

    assert done.budget_set and done.added == ("UAT", "Hypercare")
    assert done.repriced == () and done.archived == ("Go-live",)
    read = await psa.get_project(project.id)
    assert {m.name: m.amount for m in read.milestones} == {
        "Design sign-off": Money.of("4000", CURRENCY),
        "UAT": Money.of("6500.50", CURRENCY),
        "Hypercare": Money.of("2499.50", CURRENCY),
    }
    workspace = await seeder.call("GET", f"/workspaces/{project.id}")
    (doc,) = workspace["workspaces"].values()
    assert doc["price_in_cents"] == 1_300_000

    again = await psa.amend_project(amendment)
    assert (again.budget_set, again.added, again.repriced, again.archived) == (False, (), (), ())

    repriced = await psa.amend_project(
        amendment.model_copy(
            update={
                "billing_schedule": (
                    MilestoneCharge(milestone="UAT", amount=Money.of("7000", CURRENCY)),
                    MilestoneCharge(milestone="Hypercare", amount=Money.of("2000", CURRENCY)),
                )
            }
        )
    )
    assert repriced.repriced == ("UAT", "Hypercare")
