"""Month-end activities: value each project of an entity for a period and propose its journals, post a kind's
journal to the entity's ERP, and keep where the close left each project.

`close_projects` reads a batch of projects (contract and finance's recognition setting, earlier closes and
invoices from the ledger; approved time with its bill and cost rates and the milestones from the PSA), runs
`domain.month_end.close_project` on each and returns, per project, only what is to be posted now: the
journals of a first run, or on a re-run their difference from what earlier runs posted (by role, bounded
sources), with findings, margin and the new position. Time entries never travel to the workflow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from canonical import LegalEntity, Money, Period, ProjectContract
from canonical.project_financials import ProjectFinancials
from canonical.worked_time import CostedTimeEntry
from connectors.call_budget import background_calls
from connectors.roles import MonthEndWorkSource, PsaConnector
from domain.erp_rounding import rounding_rule
from domain.month_end import (
    AcceptedMilestone,
    CostRate,
    CostRateHistory,
    Finding,
    Invoiced,
    Journal,
    MarginSummary,
    MilestoneAcceptance,
    MonthEndProject,
    Position,
    WorkedTime,
    close_project,
    rerun_adjustments,
)
from domain.month_end_terms import recognition_terms
from ledger.contract_versions import contract_in_force
from ledger.database import Database
from ledger.month_end import (
    budget_hours_of,
    contract_captured_on,
    month_end_journals,
    position_before,
    save_position,
)
from ledger.records import PostingRecord, ResourceRecord
from ledger.reference import list_resources
from ledger.repository import contracts_for, get_contract, postings_for


class MonthEndScopeInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    psa: str


class MonthEndScopeResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_ids: list[str]


class CloseProjectsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    period: str
    psa: str
    project_ids: list[str]


class ProjectProposal(BaseModel):
    """One project's close: the journals to post now (per kind; none when nothing changed), what could not
    be valued, its margin, and where it leaves the project (`earlier`: where it started)."""

    model_config = ConfigDict(frozen=True)
    project_id: str
    journals: tuple[Journal, ...] = ()
    findings: tuple[Finding, ...] = ()
    margin: MarginSummary | None = None
    position: Position | None = None
    earlier: Position | None = None


class CloseProjectsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    proposals: list[ProjectProposal]


class PositionToKeep(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_id: str
    position: Position
    margin: MarginSummary


class SavePositionsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    period: str
    positions: list[PositionToKeep]


class SavePositionsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    saved: int


class PushFinancialsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    margins: list[MarginSummary]


class PushFinancialsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # The projects whose figures the PSA now shows; none when the PSA account keeps no place for them.
    pushed: list[str]


def financials(margin: MarginSummary) -> ProjectFinancials:
    return ProjectFinancials(
        project_id=margin.project_id,
        period=margin.period,
        recognised_revenue=margin.revenue,
        labour_cost=margin.labour_cost,
        billed=margin.billed,
        wip=margin.wip,
        margin=margin.margin,
    )


def _invoiced(postings: Sequence[PostingRecord], legal_entity: str, period: Period) -> tuple[Invoiced, ...]:
    """The contract's invoices posted for billing periods up to the closing one, each as issued on its billing
    period's last day (what the invoice bills is that period's)."""
    return tuple(
        Invoiced(
            number=posting.number or posting.idempotency_key,
            issued_on=Period(value=posting.period).last_day,
            net=posting.amount,
        )
        for posting in postings
        if posting.legal_entity == legal_entity and posting.period <= period.value
    )


def _cost_person(entry: CostedTimeEntry) -> str:
    """The key month-end rates an entry by: the rate the PSA stamped on it when logged is the rate in force
    for that entry, so each distinct stamped rate is a history of its own."""
    if entry.cost_rate is None:
        return entry.person_id
    return f"{entry.person_id}@{entry.cost_rate.amount} {entry.cost_rate.currency}"


def worked_and_rates(
    entries: Sequence[CostedTimeEntry], reference_rates: dict[str, Money]
) -> tuple[tuple[WorkedTime, ...], tuple[CostRateHistory, ...]]:
    """The entries as month-end values them, and the cost rate each is costed at: the one the PSA stamped on
    it, else the person's cost rate in the synced reference data, else none (a finding)."""
    worked: list[WorkedTime] = []
    histories: dict[str, CostRateHistory] = {}
    for entry in entries:
        person = _cost_person(entry)
        rate = entry.cost_rate if entry.cost_rate is not None else reference_rates.get(entry.person_id)
        if rate is not None and person not in histories:
            histories[person] = CostRateHistory(
                person=person, rates=(CostRate(effective_from=date.min, hourly=rate),)
            )
        worked.append(
            WorkedTime(
                id=entry.id,
                person=person,
                date=entry.date,
                minutes=entry.minutes,
                role=entry.role,
                bill_rate=entry.bill_rate,
                billable=entry.billable,
                billed=entry.billed,
                invoice_number=entry.invoice_number,
            )
        )
    return tuple(worked), tuple(histories.values())


def accepted_milestones(
    contract: ProjectContract, milestones: Sequence[Any]
) -> tuple[AcceptedMilestone, ...]:
    """The PSA's milestones with what completing each earns: its line of the billing schedule (by name), else
    the PSA's own amount; a milestone neither prices earns nothing."""
    schedule = {charge.milestone: charge.amount for charge in contract.contract.billing_schedule}
    accepted = []
    for milestone in milestones:
        amount = schedule.get(milestone.name, milestone.amount)
        if amount is None:
            continue
        accepted.append(
            AcceptedMilestone(
                id=milestone.id, name=milestone.name, amount=amount, accepted_on=milestone.completed_on
            )
        )
    return tuple(accepted)


class MonthEndActivities:
    def __init__(self, psa: PsaConnector, erps: ErpRouter, database: Database) -> None:
        self._psa = psa
        self._erps = erps
        self._db = database

    @activity.defn
    def month_end_scope(self, input: MonthEndScopeInput) -> MonthEndScopeResult:
        """The projects the entity books, by their contracts."""
        with self._db.session(read_only=True) as session:
            projects = [
                c.project_id for c in contracts_for(session, legal_entity=input.legal_entity, psa=input.psa)
            ]
        return MonthEndScopeResult(project_ids=sorted(projects, key=lambda p: (len(p), p)))

    @activity.defn
    async def close_projects(self, input: CloseProjectsInput) -> CloseProjectsResult:
        """One project at a time, heartbeating the proposals made so far: a retry resumes after them."""
        psa = self._psa
        if not isinstance(psa, MonthEndWorkSource):
            raise ApplicationError(
                f"the {psa.system} connector cannot list a project's worked time for month-end",
                type="Unsupported",
                non_retryable=True,
            )
        _, entity = self._erps.for_entity(input.legal_entity)
        period = Period(value=input.period)

        def reference_rates() -> list[ResourceRecord]:
            with self._db.session(read_only=True) as session:
                return list_resources(session, system=input.psa)

        resources = await asyncio.to_thread(reference_rates)
        details: Sequence[Any] = activity.info().heartbeat_details
        made = [ProjectProposal.model_validate(raw) for raw in details[0]] if details else []

        def beat() -> None:
            activity.heartbeat([proposal.model_dump(mode="json") for proposal in made])

        for project_id in input.project_ids[len(made) :]:
            made.append(await self._close_project(input, project_id, entity, period, resources, beat))
            beat()
        return CloseProjectsResult(proposals=made)

    async def _close_project(
        self,
        input: CloseProjectsInput,
        project_id: str,
        entity: LegalEntity,
        period: Period,
        resources: list[ResourceRecord],
        beat: Callable[[], None],
    ) -> ProjectProposal:
        def ledger_side() -> tuple[
            ProjectContract | None,
            Decimal | None,
            date | None,
            Position | None,
            list[PostingRecord],
            list[Journal],
        ]:
            with self._db.session(read_only=True) as session:
                # The terms in force at the period's end: an amendment effective later does not re-value
                # a month closed before it.
                in_force = contract_in_force(
                    session, psa=input.psa, project_id=project_id, on=period.last_day
                )
                contract = (
                    in_force.contract
                    if in_force is not None
                    else get_contract(session, psa=input.psa, project_id=project_id)
                )
                budget = budget_hours_of(session, psa=input.psa, project_id=project_id)
                captured = contract_captured_on(session, psa=input.psa, project_id=project_id)
                before = position_before(
                    session, legal_entity=input.legal_entity, period=input.period, project_id=project_id
                )
                postings = postings_for(session, project_id=project_id)
                posted = [
                    journal
                    for record in month_end_journals(
                        session, legal_entity=input.legal_entity, period=input.period
                    )
                    for journal in record.journals
                    if journal.project_id == project_id
                ]
            return contract, budget, captured, None if before is None else before.position, postings, posted

        contract, budget, captured, before, postings, posted = await asyncio.to_thread(ledger_side)
        if contract is None:
            return ProjectProposal(project_id=project_id)
        currency = contract.contract.currency
        terms = recognition_terms(
            project_id, contract.contract, budget_hours=budget, captured_on=captured or period.first_day
        )
        if isinstance(terms, Finding):
            return ProjectProposal(project_id=project_id, findings=(terms,))
        psa = self._psa
        assert isinstance(psa, MonthEndWorkSource)
        entries: list[CostedTimeEntry] = []
        milestones: list[Any] = []
        # Month-end reads can wait; they leave the vendors' reserve of calls to posting and new deals.
        with background_calls():
            async with connector_errors():
                async for page in psa.worked_time(project_id, period.last_day):
                    entries.extend(page.items)
                    # A long history of time reads many pages: the worker is alive between them.
                    beat()
                if isinstance(terms, MilestoneAcceptance):
                    milestones = await psa.project_milestones(project_id)
        rates = {
            r.external_id: r.cost_rate
            for r in resources
            if r.cost_rate is not None and r.cost_rate.currency == currency
        }
        worked, histories = worked_and_rates(entries, rates)
        earlier = before if before is not None and before.currency == currency else Position.opening(currency)
        project = MonthEndProject(
            legal_entity=input.legal_entity,
            project_id=project_id,
            period=input.period,
            currency=currency,
            rounding=rounding_rule(entity),
            terms=terms,
            time=worked,
            cost_rates=histories,
            milestones=accepted_milestones(contract, milestones),
            invoices=_invoiced(postings, input.legal_entity, period),
            earlier=earlier,
        )
        close = close_project(project)
        return ProjectProposal(
            project_id=project_id,
            journals=rerun_adjustments(close, posted),
            findings=close.findings,
            margin=close.margin,
            position=close.position,
            earlier=earlier,
        )

    @activity.defn
    def save_positions(self, input: SavePositionsInput) -> SavePositionsResult:
        with self._db.session() as session:
            for item in input.positions:
                save_position(
                    session,
                    legal_entity=input.legal_entity,
                    period=input.period,
                    project_id=item.project_id,
                    position=item.position,
                    margin=item.margin,
                )
        return SavePositionsResult(saved=len(input.positions))

    @activity.defn
    async def push_month_end_financials(self, input: PushFinancialsInput) -> PushFinancialsResult:
        """Each project's figures to date onto its PSA project; setting the same figures again is harmless,
        so a retry repeats the lot."""
        psa = self._psa
        if not isinstance(psa, MonthEndWorkSource):
            return PushFinancialsResult(pushed=[])
        pushed = []
        async with connector_errors():
            for margin in input.margins:
                if not await psa.push_month_end_financials(margin.project_id, financials(margin)):
                    break
                pushed.append(margin.project_id)
                activity.heartbeat(len(pushed))
        return PushFinancialsResult(pushed=pushed)
