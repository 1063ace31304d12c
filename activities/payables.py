"""Payables activities: what a supplier is owed in the PSA (expenses, and subcontracted time at its cost
rate), its supplier record and bills in the ERP of the entity, and the PSA's marks that an expense or time
entry is on a bill and paid.

Thin adapters: the Payables workflow decides. A connector that does not offer payables (`PsaPayables`,
`ErpPayables`) fails the activity at once as `NotConfigured`, which the workflow turns into an exception.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel, ConfigDict
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.erp_router import ErpRouter
from activities.errors import connector_errors
from activities.keepalive import heartbeating
from canonical import Period
from canonical.dimensions import DimensionValue
from canonical.money import RoundingRule
from canonical.payables import Bill, BillStatus, PayableExpense, PostedBill, SubcontractedTime, Supplier
from connectors.roles import ErpPayables, PsaConnector, PsaPayables
from domain.account_mapping import AccountMap, AccountRule
from domain.erp_rounding import rounding_rule
from domain.payables import supplier_for, vendor_supplier
from ledger.account_mapping import account_rules
from ledger.bill_postings import record_posted_bill
from ledger.contracts import get_contract
from ledger.database import Database
from ledger.exception_queue import resolve_by_dedupe_key
from ledger.reference import AccountRecord, list_accounts
from ledger.repository import append_audit, find_external_id, link_ids

NOT_CONFIGURED = "NotConfigured"


class OwedExpense(BaseModel):
    """A payable expense with the legal entity of its project: the entity whose books owe it."""

    model_config = ConfigDict(frozen=True)
    expense: PayableExpense
    legal_entity: str | None
    # The project's ERP dimensions (from its contract); none for a project made before ERP projects were.
    dimensions: tuple[DimensionValue, ...] = ()


class OwedTime(BaseModel):
    """Subcontracted time with the legal entity of its project and the project's ERP dimensions."""

    model_config = ConfigDict(frozen=True)
    entry: SubcontractedTime
    legal_entity: str | None
    dimensions: tuple[DimensionValue, ...] = ()


class ReadSupplierExpensesInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    period: str
    supplier_key: str


class ReadSupplierExpensesResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    supplier: Supplier | None
    expenses: tuple[OwedExpense, ...]


class ReadSubcontractedTimeInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    period: str
    supplier_key: str


class ReadSubcontractedTimeResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    supplier: Supplier | None
    time: tuple[OwedTime, ...]


class LoadCostAccountsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str


class LoadCostAccountsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    accounts: AccountMap | None
    # How the entity's ERP stores and rounds a line, for lines priced from hours (subcontracted time).
    rounding: RoundingRule | None = None


class EnsureSupplierInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    supplier: Supplier


class EnsureSupplierResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    erp: str
    supplier_id: str
    created: bool


class PostBillInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    bill: Bill
    # From the business event (supplier, period, entity, expenses): a retry can never post twice.
    idempotency_key: str


class PostBillResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    posted: PostedBill


class GetBillStatusInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    legal_entity: str
    bill_id: str


class GetBillStatusResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    status: BillStatus


class MarkExpensesInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    expense_ids: tuple[str, ...]
    bill_number: str


class MarkExpensesResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    marked: int


class MarkTimeInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    time_entry_ids: tuple[str, ...]
    bill_number: str


class MarkTimeResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    marked: int


class ResolveExceptionsInput(BaseModel):
    model_config = ConfigDict(frozen=True)
    dedupe_keys: tuple[str, ...]
    note: str


class ResolveExceptionsResult(BaseModel):
    model_config = ConfigDict(frozen=True)
    resolved: int


def _not_configured(message: str) -> ApplicationError:
    return ApplicationError(message, type=NOT_CONFIGURED, non_retryable=True)


class PayablesActivities:
    def __init__(self, psa: PsaConnector, erps: ErpRouter, database: Database) -> None:
        self._psa = psa
        self._erps = erps
        self._db = database

    def _psa_payables(self) -> PsaPayables:
        if not isinstance(self._psa, PsaPayables):
            raise _not_configured(f"the PSA connector {self._psa.system!r} offers no payables")
        return self._psa

    def _erp_payables(self, legal_entity: str) -> tuple[ErpPayables, str]:
        erp, entity = self._erps.for_entity(legal_entity)
        if not isinstance(erp, ErpPayables):
            raise _not_configured(f"entity {legal_entity} books in {erp.system!r}, which offers no payables")
        return erp, entity.code

    @activity.defn
    async def read_supplier_expenses(self, input: ReadSupplierExpensesInput) -> ReadSupplierExpensesResult:
        """The supplier's approved payable expenses of the period, each with its project's legal entity."""
        psa = self._psa_payables()
        period = Period(value=input.period)
        found: list[PayableExpense] = []
        async with connector_errors(), heartbeating():
            async for page in psa.payable_expenses(period):
                found.extend(e for e in page.items if supplier_for(psa.system, e).key == input.supplier_key)
            projects = await self._projects({e.project_id for e in found})
        return ReadSupplierExpensesResult(
            supplier=supplier_for(psa.system, found[0]) if found else None,
            expenses=tuple(
                OwedExpense(
                    expense=e, legal_entity=projects[e.project_id][0], dimensions=projects[e.project_id][1]
                )
                for e in found
            ),
        )

    @activity.defn
    async def read_subcontracted_time(self, input: ReadSubcontractedTimeInput) -> ReadSubcontractedTimeResult:
        """The supplier's subcontractors' approved time of the period, each entry with its project's legal
        entity and dimensions."""
        psa = self._psa_payables()
        period = Period(value=input.period)
        found: list[SubcontractedTime] = []
        async with connector_errors(), heartbeating():
            async for page in psa.subcontracted_time(period):
                found.extend(t for t in page.items if vendor_supplier(t.supplier).key == input.supplier_key)
            projects = await self._projects({t.project_id for t in found})
        return ReadSubcontractedTimeResult(
            supplier=vendor_supplier(found[0].supplier) if found else None,
            time=tuple(
                OwedTime(
                    entry=t, legal_entity=projects[t.project_id][0], dimensions=projects[t.project_id][1]
                )
                for t in found
            ),
        )

    async def _projects(
        self, project_ids: set[str]
    ) -> dict[str, tuple[str | None, tuple[DimensionValue, ...]]]:
        """Each project's legal entity (the PSA's) and ERP dimensions (its contract's, in the ledger)."""
        entities: dict[str, str | None] = {}
        for project_id in sorted(project_ids):
            entities[project_id] = (await self._psa.get_project(project_id)).legal_entity

        def dimensions() -> dict[str, tuple[DimensionValue, ...]]:
            with self._db.session() as session:
                found: dict[str, tuple[DimensionValue, ...]] = {}
                for project_id in sorted(project_ids):
                    contract = get_contract(session, psa=self._psa.system, project_id=project_id)
                    erp_project = contract.erp_project if contract is not None else None
                    found[project_id] = erp_project.dimensions if erp_project is not None else ()
                return found

        by_project = await asyncio.to_thread(dimensions)
        return {project_id: (entities[project_id], by_project[project_id]) for project_id in entities}

    @activity.defn
    async def load_cost_accounts(self, input: LoadCostAccountsInput) -> LoadCostAccountsResult:
        erp, entity = self._erps.for_entity(input.legal_entity)

        def read() -> tuple[tuple[AccountRule, ...], list[AccountRecord]]:
            with self._db.session() as session:
                return account_rules(session, legal_entity=entity.code), list_accounts(
                    session, system=erp.system
                )

        rules, chart = await asyncio.to_thread(read)
        named = {rule.cost_account_code for rule in rules if rule.cost_account_code}
        accounts = AccountMap(
            legal_entity=entity.code,
            erp=erp.system,
            rules=rules,
            # Only the accounts the rules name travel with the history: a chart can hold hundreds.
            chart={a.code: a.active for a in chart if a.code in named} if chart else None,
        )
        return LoadCostAccountsResult(
            erp=erp.system, accounts=accounts if rules else None, rounding=rounding_rule(entity)
        )

    @activity.defn
    async def ensure_supplier(self, input: EnsureSupplierInput) -> EnsureSupplierResult:
        """Crosswalk, then the ERP's own supplier reference, and only then create."""
        erp, entity_code = self._erp_payables(input.legal_entity)
        _, entity = self._erps.for_entity(entity_code)

        def known() -> str | None:
            with self._db.session() as session:
                return find_external_id(
                    session, entity="supplier", canonical_key=input.supplier.key, system=erp.system
                )

        supplier_id = await asyncio.to_thread(known)
        if supplier_id is not None:
            return EnsureSupplierResult(erp=erp.system, supplier_id=supplier_id, created=False)
        async with connector_errors():
            supplier_id = await erp.ensure_supplier(
                input.supplier, entity=entity, idempotency_key=f"supplier:{input.supplier.key}"
            )

        def link() -> None:
            with self._db.session() as session:
                link_ids(
                    session,
                    entity="supplier",
                    canonical_key=input.supplier.key,
                    system=erp.system,
                    external_id=supplier_id,
                )

        await asyncio.to_thread(link)
        return EnsureSupplierResult(erp=erp.system, supplier_id=supplier_id, created=True)

    @activity.defn
    async def post_bill(self, input: PostBillInput) -> PostBillResult:
        erp, entity_code = self._erp_payables(input.bill.legal_entity)
        _, entity = self._erps.for_entity(entity_code)
        async with connector_errors(), heartbeating():
            posted = await erp.post_bill(input.bill, entity=entity, idempotency_key=input.idempotency_key)
        info = activity.info()

        def audit() -> None:
            with self._db.session() as session:
                append_audit(
                    session,
                    workflow_id=info.workflow_id,
                    run_id=info.workflow_run_id,
                    actor="ps-sync",
                    action="bill_posted",
                    entity="bill",
                    key=input.idempotency_key,
                    detail={
                        "erp": erp.system,
                        "bill_id": posted.bill_id,
                        "number": posted.number,
                        "total": str(posted.total.amount),
                        "currency": posted.total.currency,
                        "expenses": [line.expense_id for line in input.bill.lines if line.expense_id],
                        "time_entries": [i for line in input.bill.lines for i in line.time_entry_ids],
                    },
                )
                record_posted_bill(
                    session, idempotency_key=input.idempotency_key, bill=input.bill, posted=posted
                )

        await asyncio.to_thread(audit)
        return PostBillResult(posted=posted)

    @activity.defn
    async def get_bill_status(self, input: GetBillStatusInput) -> GetBillStatusResult:
        erp, _ = self._erp_payables(input.legal_entity)
        async with connector_errors():
            return GetBillStatusResult(status=await erp.get_bill(input.bill_id))

    @activity.defn
    async def mark_expenses_on_bill(self, input: MarkExpensesInput) -> MarkExpensesResult:
        psa = self._psa_payables()
        async with connector_errors():
            await psa.mark_on_bill(expense_ids=input.expense_ids, bill_number=input.bill_number)
        return MarkExpensesResult(marked=len(input.expense_ids))

    @activity.defn
    async def mark_expenses_reimbursed(self, input: MarkExpensesInput) -> MarkExpensesResult:
        psa = self._psa_payables()
        async with connector_errors():
            await psa.mark_reimbursed(expense_ids=input.expense_ids, bill_number=input.bill_number)
        return MarkExpensesResult(marked=len(input.expense_ids))

    @activity.defn
    async def mark_time_on_bill(self, input: MarkTimeInput) -> MarkTimeResult:
        psa = self._psa_payables()
        async with connector_errors():
            await psa.mark_time_on_bill(time_entry_ids=input.time_entry_ids, bill_number=input.bill_number)
        return MarkTimeResult(marked=len(input.time_entry_ids))

    @activity.defn
    async def mark_time_paid(self, input: MarkTimeInput) -> MarkTimeResult:
        psa = self._psa_payables()
        async with connector_errors():
            await psa.mark_time_paid(time_entry_ids=input.time_entry_ids, bill_number=input.bill_number)
        return MarkTimeResult(marked=len(input.time_entry_ids))

    @activity.defn
    async def resolve_exceptions(self, input: ResolveExceptionsInput) -> ResolveExceptionsResult:
        """Resolve what a bill settles (an expense that lacked a cost account, a refused post); an item no
        longer waiting, or never raised, is left alone."""

        def resolve() -> int:
            with self._db.session() as session:
                return sum(
                    resolve_by_dedupe_key(session, dedupe_key=key, actor="ps-sync", note=input.note)
                    is not None
                    for key in input.dedupe_keys
                )

        return ResolveExceptionsResult(resolved=await asyncio.to_thread(resolve))
