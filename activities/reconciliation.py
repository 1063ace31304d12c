"""Reconciliation activities: gather what the PSA, the ERP and the ledger each hold for a project and period.

The PSA's entries are tallied here (counted and valued page by page, `domain.reconcile.tally_work`)
so a period of 20,000 entries travels to the workflow as a handful of totals, not as its entries.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from canonical import Period, ProjectContract
from connectors.call_budget import background_calls
from connectors.roles import ApprovedWorkSource, BookedInvoiceSource, ErpProjectBooks, PsaConnector
from domain.account_mapping import AccountMap
from domain.reconcile import (
    BookedLineFacts,
    ContractTerms,
    ErpInvoiceFacts,
    PostingFacts,
    ProjectEvidence,
    PsaWork,
    merge_work,
    tally_work,
)
from ledger.account_mapping import account_rules
from ledger.database import Database
from ledger.records import PostingRecord
from ledger.repository import contracts_for, get_contract, list_accounts, postings_for


def invoice_reference_prefix(project_id: str, period: str) -> str:
    """How TimeToBilling's invoice references for a project and period start (PS-{project}-{period}-…)."""
    return f"PS-{project_id}-{period}-"


class ReconciliationScopeInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    period: str
    psa: str


class ReconciliationScopeResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    project_ids: list[str]


class GatherEvidenceInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    period: str
    psa: str
    project_ids: list[str]


class GatherEvidenceResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    evidence: list[ProjectEvidence]


def contract_terms(contract: ProjectContract | None) -> ContractTerms | None:
    if contract is None:
        return None
    terms = contract.contract
    return ContractTerms(
        billing_model=terms.billing_model,
        expense_markup=terms.expense_markup,
        capped=terms.not_to_exceed is not None,
    )


def posting_facts(postings: Sequence[PostingRecord]) -> tuple[PostingFacts, ...]:
    return tuple(
        PostingFacts(
            number=p.number, idempotency_key=p.idempotency_key, amount=p.amount.amount, state=p.state.value
        )
        for p in postings
    )


def _dimensions_of(contract: ProjectContract | None) -> dict[str, str] | None:
    if contract is None or contract.erp_project is None:
        return None
    return {value.dimension: value.code for value in contract.erp_project.dimensions}


class ReconciliationActivities:
    def __init__(self, psa: PsaConnector, erps: ErpRouter, database: Database) -> None:
        self._psa = psa
        self._erps = erps
        self._db = database

    @activity.defn
    def reconciliation_scope(self, input: ReconciliationScopeInput) -> ReconciliationScopeResult:
        """Projects the entity books (by their contracts) and any project with a posting in the period."""
        with self._db.session(read_only=True) as session:
            projects = {
                c.project_id for c in contracts_for(session, legal_entity=input.legal_entity, psa=input.psa)
            }
            projects |= {
                p.project_id
                for p in postings_for(session, legal_entity=input.legal_entity, period=input.period)
            }
        return ReconciliationScopeResult(project_ids=sorted(projects, key=lambda p: (len(p), p)))

    @activity.defn
    async def gather_evidence(self, input: GatherEvidenceInput) -> GatherEvidenceResult:
        """One project at a time, heartbeating the evidence gathered so far: a retry resumes after it."""
        psa = self._psa
        if not isinstance(psa, ApprovedWorkSource):
            raise ApplicationError(
                f"the {psa.system} connector cannot list approved work",
                type="Unsupported",
                non_retryable=True,
            )
        erp, entity = self._erps.for_entity(input.legal_entity)
        if not isinstance(erp, BookedInvoiceSource):
            raise ApplicationError(
                f"the {erp.system} connector cannot list booked invoices",
                type="Unsupported",
                non_retryable=True,
            )
        period = Period(value=input.period)
        # Only what the ERP books on a line is compared: Xero tracks the entity's chosen two dimensions.
        tracked = erp.booked_dimensions(entity) if isinstance(erp, ErpProjectBooks) else None

        def mapping() -> AccountMap | None:
            with self._db.session(read_only=True) as session:
                rules = account_rules(session, legal_entity=input.legal_entity)
                synced = list_accounts(session, system=erp.system)
            if not rules:
                return None
            # Only the accounts the rules name: the evidence travels through workflow history.
            named = {code for rule in rules for code in (rule.account_code, rule.cost_account_code) if code}
            chart = {a.code: a.active for a in synced if a.code in named} if synced else None
            return AccountMap(legal_entity=input.legal_entity, erp=erp.system, rules=rules, chart=chart)

        accounts = await asyncio.to_thread(mapping)
        details: Sequence[Any] = activity.info().heartbeat_details
        gathered = [ProjectEvidence.model_validate(raw) for raw in details[0]] if details else []
        for project_id in input.project_ids[len(gathered) :]:

            def ledger_side(project: str = project_id) -> tuple[ProjectContract | None, list[PostingRecord]]:
                with self._db.session(read_only=True) as session:
                    contract = get_contract(session, psa=input.psa, project_id=project)
                    postings = [
                        p
                        for p in postings_for(session, project_id=project, period=input.period)
                        if p.legal_entity == input.legal_entity
                    ]
                return contract, postings

            contract, postings = await asyncio.to_thread(ledger_side)
            currency = contract.contract.currency if contract is not None else entity.currency
            # Evidence reads can wait; they leave the vendors' reserve of calls to posting and new deals.
            with background_calls():
                async with connector_errors():
                    invoices = await erp.booked_invoices(invoice_reference_prefix(project_id, input.period))
                    parts: list[PsaWork] = []
                    async for page in psa.approved_time(project_id, period):
                        parts.append(tally_work(page.items, (), currency=currency))
                        activity.heartbeat([e.model_dump(mode="json") for e in gathered])
                    async for expense_page in psa.approved_expenses(project_id, period):
                        parts.append(tally_work((), expense_page.items, currency=currency))
            gathered.append(
                ProjectEvidence(
                    project_id=project_id,
                    legal_entity=input.legal_entity,
                    period=input.period,
                    currency=currency,
                    terms=contract_terms(contract),
                    psa=merge_work(parts),
                    quantity_places=entity.quantity_places,
                    erp=tuple(
                        ErpInvoiceFacts(
                            number=inv.number,
                            invoice_id=inv.invoice_id,
                            reference=inv.reference,
                            state=inv.state,
                            net=inv.net_total.amount,
                            lines=len(inv.lines),
                            booked=tuple(
                                BookedLineFacts(
                                    description=line.description,
                                    account_code=line.account_code,
                                    dimensions={v.dimension: v.code for v in line.dimensions},
                                )
                                for line in inv.lines
                            ),
                        )
                        for inv in invoices
                    ),
                    ledger=posting_facts(postings),
                    accounts=accounts,
                    service_code=contract.service_code if contract is not None else None,
                    dimensions=_dimensions_of(contract),
                    tracked_dimensions=tracked,
                )
            )
            activity.heartbeat([e.model_dump(mode="json") for e in gathered])
        return GatherEvidenceResult(evidence=gathered)
