"""How a project's revenue is recognised, from its contract and finance's one setting: the rule per billing
model, so "as the contract says" is one place.

- time and materials: `TimeAndMaterials` (revenue is what is invoiced; unbilled approved time is WIP);
- fixed fee: `MilestoneAcceptance` of the fee (the billing schedule's milestones summed), or, when finance has
  set budget hours for the project (`pssync recognition set PROJECT --budget-hours 120`),
  `PercentageOfCompletion` of the fee by approved hours against those budget hours;
- retainer: `StraightLineRetainer` of the contract's retainer amount a month, from the first day of the month
  the contract was captured (the project's first billing period), open-ended.

A contract these rules cannot read (a fixed fee without a billing schedule, a retainer without an amount) is
a finding for finance, not a guess. Pure: the month-end activities call it for every project.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from canonical import BillingModel, ExceptionOwner
from canonical.money import total
from canonical.projects import Contract
from domain.month_end import (
    Finding,
    MilestoneAcceptance,
    PercentageOfCompletion,
    RecognitionTerms,
    SourceRefs,
    StraightLineRetainer,
    TimeAndMaterials,
)

RECOGNITION_COMMAND = "pssync recognition set"


def recognition_terms(
    project_id: str, contract: Contract, *, budget_hours: Decimal | None, captured_on: date
) -> RecognitionTerms | Finding:
    model = contract.billing_model
    if model == BillingModel.TIME_AND_MATERIALS:
        return TimeAndMaterials()
    if model == BillingModel.FIXED_FEE:
        if not contract.billing_schedule:
            return _finding(
                project_id,
                "fixed_fee_without_schedule",
                f"project {project_id} is a fixed fee with no billing schedule: month-end cannot tell the "
                "fee, "
                "so recognises none; sales ops records the milestones and their amounts on the contract",
                ExceptionOwner.SALES_OPS,
            )
        fee = total([charge.amount for charge in contract.billing_schedule], contract.currency)
        if budget_hours is not None:
            return PercentageOfCompletion(fee=fee, budget_hours=budget_hours)
        return MilestoneAcceptance(fee=fee)
    amount = contract.retainer_amount
    if amount is None or amount.currency != contract.currency:
        return _finding(
            project_id,
            "retainer_without_amount",
            f"project {project_id} is a retainer with no retainer amount in {contract.currency}: month-end "
            "recognises none; sales ops sets the monthly amount on the contract",
            ExceptionOwner.SALES_OPS,
        )
    return StraightLineRetainer(amount_per_period=amount, start=captured_on.replace(day=1))


def _finding(project_id: str, rule: str, reason: str, owner: ExceptionOwner) -> Finding:
    return Finding(
        project_id=project_id,
        rule=rule,
        owner=owner,
        reason=reason,
        sources=SourceRefs.of([f"contract:{project_id}"]),
    )
