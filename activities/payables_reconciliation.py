"""Payables reconciliation activity: gather what the ledger, the ERP and the PSA each hold of an entity's
supplier bills for a period (rules in `domain.reconcile_payables`).

The PSA's payable items are tallied page by page as they are read, so a period's thousands of expenses
travel to the workflow as a handful of totals per bill; only the items of the ERP's bill lines are kept
until each line is tied to its project.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict
from temporalio import activity

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from activities.keepalive import heartbeating
from canonical import Period
from canonical.booked_bills import BookedBill
from connectors.call_budget import background_calls
from connectors.roles import BookedBillSource, ErpPayables, ErpProjectBooks, PsaConnector, PsaPayables
from domain.account_mapping import AccountMap
from domain.payable_items import (
    PayableItem,
    PayablesTally,
    expense_item,
    merge_payables,
    tally_payables,
    time_item,
)
from domain.reconcile_payables import (
    BillLineFacts,
    BillPostingFacts,
    ErpBillFacts,
    PayablesEvidence,
    bill_reference_prefix,
    tie_line,
)
from ledger.account_mapping import account_rules
from ledger.bill_postings import BillPostingRecord, bill_postings_for
from ledger.database import Database
from ledger.repository import get_contract, list_accounts


class GatherPayablesEvidenceInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    period: str
    psa: str


class GatherPayablesEvidenceResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    # None: the entity's ERP or the PSA offers no payables, so there is nothing to reconcile (`skipped` says).
    evidence: PayablesEvidence | None
    skipped: str | None = None


class PayablesReconciliationActivities:
    def __init__(self, psa: PsaConnector, erps: ErpRouter, database: Database) -> None:
        self._psa = psa
        self._erps = erps
        self._db = database

    @activity.defn
    async def gather_payables_evidence(
        self, input: GatherPayablesEvidenceInput
    ) -> GatherPayablesEvidenceResult:
        psa = self._psa
        erp, entity = self._erps.for_entity(input.legal_entity)
        if not isinstance(psa, PsaPayables):
            return GatherPayablesEvidenceResult(
                evidence=None, skipped=f"the PSA connector {psa.system!r} offers no payables"
            )
        if not isinstance(erp, ErpPayables) or not isinstance(erp, BookedBillSource):
            return GatherPayablesEvidenceResult(
                evidence=None,
                skipped=f"entity {input.legal_entity} books in {erp.system!r}, which lists no bills",
            )
        period = Period(value=input.period)
        # Only what the ERP books on a line is compared: Xero tracks the entity's chosen two dimensions.
        tracked = erp.booked_dimensions(entity) if isinstance(erp, ErpProjectBooks) else None

        def ledger_side() -> tuple[list[BillPostingRecord], AccountMap | None]:
            with self._db.session(read_only=True) as session:
                postings = bill_postings_for(session, legal_entity=input.legal_entity, period=period)
                rules = account_rules(session, legal_entity=input.legal_entity)
                synced = list_accounts(session, system=erp.system)
            if not rules:
                return postings, None
            # Only the accounts the rules name: the evidence travels through workflow history.
            named = {code for rule in rules for code in (rule.account_code, rule.cost_account_code) if code}
            chart = {a.code: a.active for a in synced if a.code in named} if synced else None
            return postings, AccountMap(
                legal_entity=input.legal_entity, erp=erp.system, rules=rules, chart=chart
            )

        postings, accounts = await asyncio.to_thread(ledger_side)
        # Evidence reads can wait; they leave the vendors' reserve of calls to posting and new deals.
        with background_calls():
            async with connector_errors(), heartbeating():
                bills = await erp.booked_bills(bill_reference_prefix(input.period))
                recorded = {p.number: p.source_ids for p in postings}
                wanted = {source for b in bills for line in recorded.get(b.number, ()) for source in line}
                entities: dict[str, str | None] = {}

                async def ours(project_id: str) -> bool:
                    # The PSA's project names the entity whose books owe its items, as Payables reads it.
                    if project_id not in entities:
                        entities[project_id] = (await self._psa.get_project(project_id)).legal_entity
                    return entities[project_id] == input.legal_entity

                parts: list[PayablesTally] = []
                tied: dict[str, PayableItem] = {}
                async for page in psa.payable_expenses(period):
                    items = [expense_item(e) for e in page.items if await ours(e.project_id)]
                    parts.append(tally_payables(items))
                    tied.update((item.id, item) for item in items if item.id in wanted)
                async for time_page in psa.subcontracted_time(period):
                    items = [time_item(t) for t in time_page.items if await ours(t.project_id)]
                    parts.append(tally_payables(items))
                    tied.update((item.id, item) for item in items if item.id in wanted)

        def dimensions_side(projects: set[str]) -> dict[str, dict[str, str]]:
            found: dict[str, dict[str, str]] = {}
            with self._db.session(read_only=True) as session:
                for project_id in sorted(projects):
                    contract = get_contract(session, psa=input.psa, project_id=project_id)
                    if contract is not None and contract.erp_project is not None:
                        values = {str(v.dimension): v.code for v in contract.erp_project.dimensions}
                        if values:
                            found[project_id] = values
            return found

        erp_bills = tuple(_bill_facts(bill, recorded.get(bill.number, ()), tied) for bill in bills)
        projects = {line.project_id for b in erp_bills for line in b.lines if line.project_id}
        dimensions = await asyncio.to_thread(dimensions_side, projects)
        return GatherPayablesEvidenceResult(
            evidence=PayablesEvidence(
                legal_entity=input.legal_entity,
                period=period.value,
                psa=merge_payables(parts),
                erp=erp_bills,
                ledger=tuple(
                    BillPostingFacts(
                        number=p.number,
                        reference=p.reference,
                        bill_id=p.bill_id,
                        supplier_key=p.supplier_key,
                        total=p.total.amount,
                        currency=p.total.currency,
                        lines=p.line_count,
                        idempotency_key=p.idempotency_key,
                    )
                    for p in postings
                ),
                accounts=accounts,
                dimensions=dimensions,
                tracked_dimensions=tracked,
                quantity_places=entity.quantity_places,
            )
        )


def _bill_facts(
    bill: BookedBill, recorded: tuple[tuple[str, ...], ...], items: dict[str, PayableItem]
) -> ErpBillFacts:
    lines = []
    for position, line in enumerate(bill.lines):
        project_id, cost_rule = tie_line(position, len(bill.lines), recorded, items)
        lines.append(
            BillLineFacts(
                description=line.description,
                amount=line.amount.amount,
                account_code=line.account_code,
                dimensions={v.dimension: v.code for v in line.dimensions},
                project_id=project_id,
                cost_rule=cost_rule,
            )
        )
    return ErpBillFacts(
        number=bill.number,
        bill_id=bill.bill_id,
        reference=bill.reference,
        state=bill.state,
        total=bill.total.amount,
        amount_paid=bill.amount_paid.amount,
        currency=bill.total.currency,
        supplier_name=bill.supplier_name,
        lines=tuple(lines),
    )
