"""Line validation: whether one approved time entry or expense may be billed, and if not, who can fix it.

Pure and deterministic, so the TimeToBilling workflow applies it batch by batch and replays it. A line that
fails becomes a `RejectedItem` owned by the team whose data is wrong: PMO for the project and its tasks,
HR/ops for people and their roles, finance for rates, currencies and tax.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from pydantic import BaseModel, ConfigDict

from canonical import (
    Contract,
    ExceptionOwner,
    Expense,
    LegalEntity,
    MilestoneCharge,
    Money,
    Project,
    RateCard,
    Resource,
    TimeEntry,
)
from canonical.contract_versions import ContractVersion, version_in_force
from canonical.dimensions import DimensionValue
from domain.account_mapping import AccountChoice, AccountMap, AccountProblem


class RejectedItem(BaseModel):
    """A line that could not be billed, the rule it broke, and the team that can fix it."""

    model_config = ConfigDict(frozen=True)

    item_id: str
    kind: str
    owner: ExceptionOwner
    reason: str
    # A stable name for the broken rule: exceptions are grouped by it, one per rule and billing run.
    rule: str = "invalid_line"


class BillingContext(BaseModel):
    """What a line is checked against, read once per run: the project, who is staffed, rates, terms."""

    model_config = ConfigDict(frozen=True)

    project: Project
    resources: tuple[Resource, ...]
    rate_card: RateCard
    contract: Contract
    entity: LegalEntity
    # The ERP's own tax codes (code -> active) from the last ReferenceSync, or None before any sync: a code
    # the entity allows but the ERP has archived would only be refused at posting, after finance approved.
    erp_tax_codes: dict[str, bool] | None = None
    # Finance's account mapping for the entity, with the ERP's chart as last synced; None (or no rules): every
    # line books to the ERP's default account.
    accounts: AccountMap | None = None
    # The productised service the deal was sold as: the revenue account of time no role mapping claims.
    service_code: str | None = None
    # The project and customer every line is reported under, in the ERP's keys (made at closed-won).
    dimensions: tuple[DimensionValue, ...] = ()
    # Every version of the contract when it was amended after closed-won; (): `contract` is the only one.
    # A milestone bills the schedule of the version in force on the day it was completed.
    contract_versions: tuple[ContractVersion, ...] = ()

    def billing_schedule_on(self, day: date) -> tuple[MilestoneCharge, ...]:
        in_force = version_in_force(self.contract_versions, day)
        return (in_force.contract.contract if in_force else self.contract).billing_schedule

    @property
    def expense_tax_code(self) -> str:
        return self.contract.expense_tax_code or self.contract.tax_code

    def resource(self, resource_id: str) -> Resource | None:
        return next((r for r in self.resources if r.id == resource_id), None)


class RatedTime(BaseModel):
    """A valid time entry with the role and rate it bills at."""

    model_config = ConfigDict(frozen=True)

    entry: TimeEntry
    role: str
    rate: Money
    # The account the entry's line books to; None when the entity maps no accounts.
    account_code: str | None = None

    @property
    def value(self) -> Money:
        return self.rate.times(self.entry.hours)


def _reject(item_id: str, kind: str, owner: ExceptionOwner, rule: str, reason: str) -> RejectedItem:
    return RejectedItem(item_id=item_id, kind=kind, owner=owner, rule=rule, reason=reason)


def check_time_entry(entry: TimeEntry, context: BillingContext) -> RatedTime | RejectedItem:
    """The first rule the entry breaks, in the order a person would fix them; or its role and rate."""
    kind = "time_entry"
    if entry.project_id != context.project.id:
        return _reject(
            entry.id,
            kind,
            ExceptionOwner.PMO,
            "wrong_project",
            f"time entry {entry.id} belongs to project {entry.project_id}, not {context.project.id}",
        )
    if entry.task_id is not None:
        task = next((t for t in context.project.tasks if t.id == entry.task_id), None)
        if task is None:
            return _reject(
                entry.id,
                kind,
                ExceptionOwner.PMO,
                "unknown_task",
                f"time entry {entry.id} is logged to task {entry.task_id}, which is not an open task "
                f"of project {context.project.id}",
            )
        if not task.billable:
            return _reject(
                entry.id,
                kind,
                ExceptionOwner.PMO,
                "task_not_billable",
                f"time entry {entry.id} is marked billable but task {task.name!r} is not billable",
            )
    resource = context.resource(entry.resource_id)
    if resource is None:
        return _reject(
            entry.id,
            kind,
            ExceptionOwner.HR_OPS,
            "unknown_resource",
            f"resource {entry.resource_id} is not staffed on project {context.project.id}",
        )
    # The entry's own role wins (Kantata records the role it was logged under); else the person's role.
    role = entry.role or resource.role
    if not role:
        return _reject(
            entry.id,
            kind,
            ExceptionOwner.HR_OPS,
            "no_role",
            f"resource {resource.name} ({resource.id}) has no role to rate their time by",
        )
    rate = context.rate_card.rate_for(role, entry.date)
    if rate is None:
        return _reject(
            entry.id,
            kind,
            ExceptionOwner.FINANCE,
            "no_rate",
            f"no rate for role {role!r} on {entry.date.isoformat()} in rate card {context.rate_card.name!r}",
        )
    if rate.currency != context.contract.currency:
        return _reject(
            entry.id,
            kind,
            ExceptionOwner.FINANCE,
            "currency_mismatch",
            f"rate card currency {rate.currency} differs from contract currency {context.contract.currency}",
        )
    problem = _tax_code_problem(context.contract.tax_code, context)
    if problem is not None:
        rule, reason = problem
        return _reject(entry.id, kind, ExceptionOwner.FINANCE, rule, reason)
    account = booked_account(context, lambda accounts: accounts.for_time(role, context.service_code))
    if isinstance(account, AccountProblem):
        reason = f"time entry {entry.id}: {account.reason}"
        return _reject(entry.id, kind, ExceptionOwner.FINANCE, account.rule, reason)
    return RatedTime(entry=entry, role=role, rate=rate, account_code=account)


def booked_account(
    context: BillingContext, choose: Callable[[AccountMap], AccountChoice | AccountProblem]
) -> str | AccountProblem | None:
    """The account a line books to by the entity's mapping, None when it maps none, or why it cannot be."""
    if context.accounts is None or not context.accounts.in_use:
        return None
    chosen = choose(context.accounts)
    return chosen if isinstance(chosen, AccountProblem) else chosen.account_code


def expense_category(expense: Expense) -> str:
    return expense.category or "Expenses"


def _tax_code_problem(code: str, context: BillingContext) -> tuple[str, str] | None:
    """(rule, reason) when `code` cannot be billed: unknown to the entity, or archived in its ERP."""
    entity = context.entity
    if code not in entity.tax_codes:
        return (
            "invalid_tax_code",
            f"tax code {code!r} is not valid for entity {entity.code} (valid: {', '.join(entity.tax_codes)})",
        )
    synced = context.erp_tax_codes
    if synced is not None and not synced.get(code, False):
        state = "is archived" if code in synced else "does not exist"
        return (
            "tax_code_not_in_erp",
            f"tax code {code!r} {state} in {entity.erp} (as of the last reference sync); "
            f"entity {entity.code} cannot bill with it until finance restores it or changes the contract",
        )
    return None


def check_expense(expense: Expense, context: BillingContext) -> Expense | RejectedItem:
    kind = "expense"
    if expense.project_id != context.project.id:
        return _reject(
            expense.id,
            kind,
            ExceptionOwner.PMO,
            "wrong_project",
            f"expense {expense.id} belongs to project {expense.project_id}, not {context.project.id}",
        )
    if expense.resource_id is not None and context.resource(expense.resource_id) is None:
        return _reject(
            expense.id,
            kind,
            ExceptionOwner.HR_OPS,
            "unknown_resource",
            f"expense {expense.id} was logged by {expense.resource_id}, who is not staffed on project "
            f"{context.project.id}",
        )
    if expense.amount.currency != context.contract.currency:
        return _reject(
            expense.id,
            kind,
            ExceptionOwner.FINANCE,
            "currency_mismatch",
            f"expense in {expense.amount.currency}, contract bills in {context.contract.currency}",
        )
    problem = _tax_code_problem(context.expense_tax_code, context)
    if problem is not None:
        rule, reason = problem
        return _reject(expense.id, kind, ExceptionOwner.FINANCE, rule, f"expense {reason}")
    category = expense_category(expense)
    account = booked_account(context, lambda accounts: accounts.for_expense(category))
    if isinstance(account, AccountProblem):
        reason = f"expense {expense.id}: {account.reason}"
        return _reject(expense.id, kind, ExceptionOwner.FINANCE, account.rule, reason)
    return expense
