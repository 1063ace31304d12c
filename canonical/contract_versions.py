"""Contract versions: the terms a project is billed under from a date on, and the CRM change behind them."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict

from canonical.money import Money
from canonical.projects import MilestoneCharge, ProjectContract


class FieldChange(BaseModel):
    """One contract term the CRM change altered, as text on both sides (money with its currency)."""

    model_config = ConfigDict(frozen=True)

    field: str
    old: str | None
    new: str | None


class CrmChange(BaseModel):
    """The CRM change a version came from: which deal, which notification, the CRM's stamp, what moved."""

    model_config = ConfigDict(frozen=True)

    crm: str
    opportunity_id: str
    notification_id: str | None = None
    # The CRM's own modification stamp of the record when it was read (Salesforce SystemModstamp).
    modified_at: datetime | None = None
    changes: tuple[FieldChange, ...] = ()


class ContractVersion(BaseModel):
    """The project's contract in force from `effective_from` until the next version's date.

    Version 1 is what closed-won saved; its `effective_from` is the earliest date there is, so it covers
    every entry before the first amendment.
    """

    model_config = ConfigDict(frozen=True)

    version: int
    effective_from: date
    contract: ProjectContract
    # None for version 1: closed-won is audited by OpportunityToProject itself.
    cause: CrmChange | None = None


def version_in_force(versions: tuple[ContractVersion, ...], on: date) -> ContractVersion | None:
    """The version with the latest `effective_from` on or before `on`; a later number wins a tie."""
    in_force = [v for v in versions if v.effective_from <= on]
    if not in_force:
        return None
    return max(in_force, key=lambda v: (v.effective_from, v.version))


class ProjectAmendment(BaseModel):
    """What an amended contract changes on the PSA project: its budget and its milestones.

    `milestones` is the whole new list: one missing from the project is added, one the project has that is
    not listed is archived (unless completed: a completed milestone is history and stays). A milestone
    named in `billing_schedule` carries its charge as its budget, as at closed-won.
    """

    model_config = ConfigDict(frozen=True)

    project_id: str
    budget: Money | None = None
    milestones: tuple[str, ...] = ()
    billing_schedule: tuple[MilestoneCharge, ...] = ()


class AmendedProject(BaseModel):
    """What the PSA did: milestone titles added, re-priced and archived, and whether the budget moved."""

    model_config = ConfigDict(frozen=True)

    project_id: str
    budget_set: bool = False
    added: tuple[str, ...] = ()
    repriced: tuple[str, ...] = ()
    archived: tuple[str, ...] = ()
