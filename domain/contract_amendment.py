"""What a change to a won deal does to the project's contract: nothing, a new version, or finance's call.

The changed opportunity is mapped by the same rules as at closed-won (domain.project_setup), so an amended
contract is exactly what the deal would have become had it been sold that way; only the terms differ from
the version in force, never the parties or the ERP records made at closed-won.

Finance decides instead of us when applying the change would:
- leave the customer billed above the new contract: what is already invoiced (net of credits, in the
  contract's currency, as the not-to-exceed cap counts it) exceeds the new ceiling, which is the
  not-to-exceed for time and materials (its amount is an estimate, not a limit), the fee for a fixed fee
  and the contract value for a retainer;
- change the billing model of a project with anything invoiced (the invoices so far follow the old one);
- move the deal to another legal entity or currency (that is a new contract, not an amendment);
- take effect before a month already invoiced, or before the version in force began (invoices stand as
  issued: re-billing them is a credit note, which is finance's to raise).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

from canonical import (
    BillingModel,
    Contract,
    Milestone,
    MilestoneCharge,
    Money,
    Period,
    ProjectContract,
    ProjectSpec,
)
from canonical.contract_versions import ContractVersion, CrmChange, FieldChange
from domain.billing_policy import BillingHistory
from domain.service_catalog import template_for

Outcome = Literal["unchanged", "amend", "refuse"]


class BilledSoFar(BaseModel):
    """Net invoiced in the contract's currency, in total and per invoiced period (oldest first)."""

    model_config = ConfigDict(frozen=True)

    total: Money
    by_period: tuple[tuple[str, Money], ...] = ()


class AmendmentDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    outcome: Outcome
    changes: tuple[FieldChange, ...] = ()
    # The new version when the outcome is "amend".
    version: ContractVersion | None = None
    # Why finance must decide, one sentence each, when the outcome is "refuse".
    reasons: tuple[str, ...] = ()
    billed: BilledSoFar
    # What the change would have made the ceiling (see the module doc); None: no ceiling.
    new_ceiling: Money | None = None


def billed_so_far(history: BillingHistory, currency: str) -> BilledSoFar:
    periods: dict[str, Money] = {}
    for posting in history.postings:
        if posting.amount.currency == currency:
            periods[posting.period] = periods.get(posting.period, Money.zero(currency)) + posting.amount
    return BilledSoFar(total=history.billed_to_date(currency), by_period=tuple(sorted(periods.items())))


def ceiling(contract: Contract, budget: Money | None) -> Money | None:
    """The most the contract lets the customer be billed in all; None: time and materials without a cap."""
    if contract.billing_model == BillingModel.TIME_AND_MATERIALS:
        return contract.not_to_exceed
    return budget


def amended_contract(current: ProjectContract, spec: ProjectSpec) -> ProjectContract:
    """The current contract with the terms the changed deal maps to; parties and ERP records unchanged."""
    return current.model_copy(
        update={"contract": spec.contract, "service_code": spec.service_code, "budget": spec.budget}
    )


def money_text(value: Money | None) -> str | None:
    """Money as "1234.50 GBP": at the currency's places when that is exact (the ledger keeps four)."""
    if value is None:
        return None
    shown = value.rounded() if value.rounded() == value else value
    return f"{shown.amount} {shown.currency}"


def settled_milestones(
    old_schedule: Sequence[MilestoneCharge], unbilled: Sequence[Milestone], effective_from: date
) -> frozenset[str]:
    """Milestones whose charge an amendment cannot move: billed already (no longer among the PSA's
    unbilled ones), or completed before the amendment takes effect (billed at the old charge)."""
    open_ = {m.name: m for m in unbilled}
    settled = set()
    for charge in old_schedule:
        milestone = open_.get(charge.milestone)
        if milestone is None or (
            milestone.completed_on is not None and milestone.completed_on < effective_from
        ):
            settled.add(charge.milestone)
    return frozenset(settled)


def rebalanced_schedule(
    new_schedule: Sequence[MilestoneCharge],
    old_schedule: Sequence[MilestoneCharge],
    settled: frozenset[str],
    fee: Money,
) -> tuple[MilestoneCharge, ...] | None:
    """The new schedule with each settled milestone kept at its old charge and the rest of the fee spread
    over the others in proportion to their new charges (each to the cent, the last taking the remainder),
    so the schedule still adds up to the fee. None when the settled charges exceed the fee, or nothing is left
    to carry a non-zero rest."""
    old = {c.milestone: c.amount for c in old_schedule}
    fixed = {
        c.milestone: old[c.milestone] for c in new_schedule if c.milestone in settled and c.milestone in old
    }
    if not fixed:
        return tuple(new_schedule)
    rest = [c for c in new_schedule if c.milestone not in fixed]
    left = fee
    for amount in fixed.values():
        left = left - amount
    if left.amount < 0:
        return None
    if not rest:
        kept = tuple(MilestoneCharge(milestone=c.milestone, amount=fixed[c.milestone]) for c in new_schedule)
        return kept if left.amount == 0 else None
    weights = sum((c.amount.amount for c in rest), Decimal(0))
    spread: dict[str, Money] = {}
    given = Money.zero(fee.currency)
    for charge in rest[:-1]:
        share = left.times(charge.amount.amount / weights).rounded() if weights else Money.zero(fee.currency)
        # Rounding each share up could give away more than is left; the last one takes what remains.
        share = min(share, left - given)
        spread[charge.milestone] = share
        given = given + share
    spread[rest[-1].milestone] = left - given
    return tuple(
        MilestoneCharge(
            milestone=c.milestone, amount=fixed[c.milestone] if c.milestone in fixed else spread[c.milestone]
        )
        for c in new_schedule
    )


def _schedule(contract: ProjectContract) -> str | None:
    charges = contract.contract.billing_schedule
    if not charges:
        return None
    return "; ".join(f"{c.milestone}: {money_text(c.amount)}" for c in charges)


# Each term billing reads, rendered as text for the audit: the same rendering on both sides compares them.
_TERMS: tuple[tuple[str, Callable[[ProjectContract], str | None]], ...] = (
    ("legal_entity", lambda c: c.contract.legal_entity),
    ("currency", lambda c: c.contract.currency),
    ("billing_model", lambda c: c.contract.billing_model.value),
    ("service_code", lambda c: c.service_code),
    ("budget", lambda c: money_text(c.budget)),
    ("not_to_exceed", lambda c: money_text(c.contract.not_to_exceed)),
    ("retainer_amount", lambda c: money_text(c.contract.retainer_amount)),
    ("billing_schedule", _schedule),
    ("expense_markup", lambda c: str(c.contract.expense_markup)),
    ("tax_code", lambda c: c.contract.tax_code),
    ("expense_tax_code", lambda c: c.contract.expense_tax_code),
    ("payment_terms_days", lambda c: str(c.contract.payment_terms_days)),
    ("late_entries", lambda c: c.contract.late_entries),
)


def changed_terms(old: ProjectContract, new: ProjectContract) -> tuple[FieldChange, ...]:
    changes = []
    for name, render in _TERMS:
        before, after = render(old), render(new)
        # A contract saved before budgets were kept has none: that alone is not a change of the deal.
        if name == "budget" and before is None:
            continue
        if before != after:
            changes.append(FieldChange(field=name, old=before, new=after))
    return tuple(changes)


def decide_amendment(
    *,
    current: ContractVersion,
    spec: ProjectSpec,
    history: BillingHistory,
    cause: CrmChange,
    effective_from: date,
    settled: frozenset[str] = frozenset(),
) -> AmendmentDecision:
    """What the changed deal (`spec`, mapped as at closed-won) does to the version in force (`current`).

    `settled` names the milestones whose charge cannot move (`settled_milestones`): a changed fee is
    spread over the others, so what the schedule bills in all is still the new fee.
    """
    old = current.contract
    new = amended_contract(old, spec)
    billed = billed_so_far(history, old.contract.currency)
    schedule_reasons: list[str] = []
    if settled and new.contract.billing_schedule and spec.budget is not None:
        schedule = rebalanced_schedule(
            new.contract.billing_schedule, old.contract.billing_schedule, settled, spec.budget
        )
        if schedule is None:
            schedule_reasons.append(
                f"the fee would become {money_text(spec.budget)}, but the milestones billed or completed at "
                "their old charges leave nothing (or less than nothing) to bill the difference on"
            )
        else:
            new = new.model_copy(
                update={"contract": new.contract.model_copy(update={"billing_schedule": schedule})}
            )
    changes = changed_terms(old, new)
    if not changes:
        return AmendmentDecision(outcome="unchanged", billed=billed)
    new_ceiling = ceiling(new.contract, new.budget)
    reasons = (*_refusals(current, new, billed, new_ceiling, effective_from), *schedule_reasons)
    if reasons:
        return AmendmentDecision(
            outcome="refuse", changes=changes, reasons=reasons, billed=billed, new_ceiling=new_ceiling
        )
    version = ContractVersion(
        version=current.version + 1,
        effective_from=effective_from,
        contract=new,
        cause=cause.model_copy(update={"changes": changes}),
    )
    return AmendmentDecision(
        outcome="amend", changes=changes, version=version, billed=billed, new_ceiling=new_ceiling
    )


def _refusals(
    current: ContractVersion,
    new: ProjectContract,
    billed: BilledSoFar,
    new_ceiling: Money | None,
    effective_from: date,
) -> tuple[str, ...]:
    old = current.contract
    reasons: list[str] = []
    if (new.contract.legal_entity, new.contract.currency) != (
        old.contract.legal_entity,
        old.contract.currency,
    ):
        reasons.append(
            f"the deal moved from {old.contract.legal_entity}/{old.contract.currency} to "
            f"{new.contract.legal_entity}/{new.contract.currency}: that is a new contract, not an amendment"
        )
        # Amounts in two currencies cannot be compared; the other checks would only repeat this one.
        return tuple(reasons)
    something_billed = bool(billed.by_period)
    if new.contract.billing_model != old.contract.billing_model and something_billed:
        reasons.append(
            f"the billing model would change from {old.contract.billing_model.value} to "
            f"{new.contract.billing_model.value} on a project already invoiced {money_text(billed.total)}"
        )
    if new_ceiling is not None and billed.total > new_ceiling:
        reasons.append(
            f"the new contract allows {money_text(new_ceiling)} but {money_text(billed.total)} is already "
            f"invoiced: the customer would be billed {money_text(billed.total - new_ceiling)} above it"
        )
    old_rates = _rate_card_set(old.service_code)
    if new.service_code != old.service_code and _rate_card_set(new.service_code) != old_rates:
        reasons.append(
            f"service {old.service_code} -> {new.service_code} changes the rate card set the project is "
            "staffed at, which ps-sync does not switch on a running project"
        )
    if effective_from < current.effective_from:
        reasons.append(
            f"effective {effective_from}, before version {current.version} took effect on "
            f"{current.effective_from}"
        )
    period = Period.of(effective_from).value
    # A month invoiced after the one the amendment takes effect in was billed at the old terms: re-billing
    # it is a credit note. The effective month itself may hold an invoice (billed on demand mid-month):
    # what it billed stays as billed, and settled milestones keep their charges.
    invoiced = [p for p, _ in billed.by_period if p > period]
    if invoiced:
        reasons.append(
            f"effective {effective_from}, before {'/'.join(invoiced)} already invoiced at the old terms: "
            "re-billing an issued invoice is a credit note"
        )
    return tuple(reasons)


def _rate_card_set(service_code: str | None) -> str | None:
    template = template_for(service_code)
    return None if template is None else (template.rate_card_set or template.code)
