"""The script a firm would otherwise write: plain asyncio, ps-sync's own connectors and business rules, the
same vendor calls for the same work, and nothing durable (no Temporal, no ledger, no history).

It is the practical limit of the work on this machine: every ps-sync figure is also shown as a ratio to
it. It keeps what it learns (project contracts, customers) in memory, as such a script would. It has no
retries except honouring a vendor's 429 (a script without that would simply crash under Xero's limits).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from canonical import BillingModel, Contract, CrmWriteBack, Invoice, Period, PostedInvoice
from config import Settings
from connectors.errors import RateLimited, Timeout, Unavailable
from domain.billing_policy import invoice_reference
from domain.billing_validation import BillingContext
from domain.idempotency import customer_key, invoice_key
from domain.project_setup import project_spec
from domain.rating import RatedWork, invoice_lines, rate_expenses, rate_milestones, rate_time
from domain.readiness import check_readiness
from worker import Connectors, build_connectors

T = TypeVar("T")
MARK_BILLED_CHUNK = 500
TRANSIENT_TRIES = 3
# Calls in flight per ERP (Xero's connector also keeps itself under Xero's limit of 5).
ERP_IN_FLIGHT = {"tryton": 2, "xero": 5}


class DirectFailure(RuntimeError):
    pass


@dataclass(frozen=True)
class ProjectContract:
    project_id: str
    contract: Contract
    customer_id: str
    customer_name: str


@dataclass
class DirectStats:
    rate_limited: int = 0
    rate_limited_wait: float = 0.0
    transient_failures: int = 0


@dataclass(frozen=True)
class Billed:
    project_id: str
    invoice: PostedInvoice | None
    time_entries: int
    expenses: int


@dataclass
class DirectScript:
    settings: Settings
    connectors: Connectors = field(init=False)
    contracts: dict[str, ProjectContract] = field(default_factory=dict)
    stats: DirectStats = field(default_factory=DirectStats)

    def __post_init__(self) -> None:
        self.connectors = build_connectors(self.settings)
        self._entities = {entity.code: entity for entity in self.settings.entities}
        self._erp_gates: dict[str, asyncio.Semaphore] = {}

    async def aclose(self) -> None:
        await self.connectors.aclose()

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One vendor call. A 429 waits for Retry-After; a timeout or an outage is tried again a few times
        (every write carries its idempotency key or looks before it creates); anything else is fatal."""
        failures = 0
        while True:
            try:
                return await call()
            except RateLimited as limited:
                wait = limited.retry_after if limited.retry_after is not None else 1.0
                self.stats.rate_limited += 1
                self.stats.rate_limited_wait += wait
                await asyncio.sleep(wait)
            except (Timeout, Unavailable):
                failures += 1
                self.stats.transient_failures += 1
                if failures > TRANSIENT_TRIES:
                    raise
                await asyncio.sleep(failures)

    async def _erp_call(self, system: str, call: Callable[[], Awaitable[T]]) -> T:
        # Tryton posts one invoice at a time on its SQLite database (about 1.5 s of CPU each): more in
        # flight only queue inside Tryton until they time out, so a sensible script sends them in turn.
        async with self._erp_gates.setdefault(system, asyncio.Semaphore(ERP_IN_FLIGHT.get(system, 5))):
            return await self._call(call)

    # --- closed-won -----------------------------------------------------------------------------------------

    async def on_closed_won(self, opportunity_id: str) -> ProjectContract:
        """The same calls as OpportunityToProject: read, check, customer, project, write back."""
        crm, psa = self.connectors.crm, self.connectors.psa
        opportunity = await self._call(lambda: crm.get_opportunity(opportunity_id))
        readiness = check_readiness(opportunity, self.settings.entities)
        if not readiness.ready or readiness.entity is None:
            raise DirectFailure(f"opportunity {opportunity_id} is not ready: {readiness.missing}")
        entity = readiness.entity
        erp, _ = self.connectors.erps.for_entity(entity.code)
        customer_id = await self._erp_call(erp.system, lambda: erp.find_customer(opportunity.account))
        if customer_id is None and opportunity.account.tax_number:
            # ps-sync refuses to create a customer the ERP already has under the same name and tax number.
            tax_number = opportunity.account.tax_number
            same = await self._erp_call(
                erp.system,
                lambda: erp.find_customers_by_name_and_tax_number(opportunity.account.name, tax_number),
            )
            if same:
                raise DirectFailure(f"{opportunity.account.name} already exists in {erp.system}")
        if customer_id is None:
            customer_id = await self._erp_call(
                erp.system,
                lambda: erp.create_customer(
                    opportunity.account,
                    entity=entity,
                    idempotency_key=customer_key(erp=erp.system, account_id=opportunity.account.id),
                ),
            )
        spec = project_spec("salesforce", opportunity, entity)
        project = await self._call(lambda: psa.find_project(spec.external_ref))
        if project is None:
            project = await self._call(lambda: psa.ensure_project(spec))
        await self._call(
            lambda: crm.write_back(
                CrmWriteBack(
                    opportunity_id=opportunity.id,
                    account_id=opportunity.account.id,
                    psa_project_id=project.id,
                    erp=erp.system,
                    erp_customer_id=customer_id,
                    legal_entity=entity.code,
                    sync_status="Project created",
                )
            )
        )
        contract = ProjectContract(
            project_id=project.id,
            contract=spec.contract,
            customer_id=customer_id,
            customer_name=opportunity.account.name,
        )
        self.contracts[project.id] = contract
        return contract

    # --- billing -------------------------------------------------------------------------------------------

    async def bill_project(self, project_id: str, period: str) -> Billed:
        """The same calls as TimeToBilling: setup, pages of time and expenses (milestones for a fixed fee),
        post once, mark billed. No finance approval, no ledger, no exceptions: a script has none."""
        psa = self.connectors.psa
        known = self.contracts[project_id]
        month = Period(value=period)
        entity = self._entities[known.contract.legal_entity]
        project = await self._call(lambda: psa.get_project(project_id))
        rate_card = await self._call(lambda: psa.get_rate_card(project_id))
        resources = await self._call(lambda: psa.project_resources(project_id))
        context = BillingContext(
            project=project,
            resources=tuple(resources),
            rate_card=rate_card,
            contract=known.contract,
            entity=entity,
        )
        rated = RatedWork()
        if known.contract.billing_model == BillingModel.FIXED_FEE:
            milestones = await self._call(lambda: psa.unbilled_milestones(project_id))
            rated = rate_milestones(rated, milestones, context=context, period_end=month.last_day)
        else:
            async for page in psa.time_entries(project_id, month):
                rated = rate_time(rated, page.items, context=context)
        async for expense_page in psa.expenses(project_id, month):
            rated = rate_expenses(rated, expense_page.items, context=context)
        lines = invoice_lines(rated, context=context, period=period)
        if not lines:
            return Billed(project_id=project_id, invoice=None, time_entries=0, expenses=0)
        key = invoice_key(
            project_id=project_id,
            period=period,
            entry_ids=[
                *rated.time_entry_ids,
                *(f"expense:{i}" for i in rated.expense_ids),
                *(f"milestone:{i}" for i in rated.milestone_ids),
            ],
        )
        today = datetime.now(UTC).date()
        invoice = Invoice(
            legal_entity=entity.code,
            customer_id=known.customer_id,
            customer_name=known.customer_name,
            project_id=project_id,
            period=period,
            currency=known.contract.currency,
            issue_date=today,
            due_date=today + timedelta(days=known.contract.payment_terms_days),
            reference=invoice_reference(project_id=project_id, period=period, key=key, adjustment=False),
            lines=lines,
        )
        erp, erp_entity = self.connectors.erps.for_entity(entity.code)
        posted = await self._erp_call(erp.system, lambda: erp.find_invoice(invoice.reference))
        if posted is None:
            posted = await self._erp_call(
                erp.system, lambda: erp.post_invoice(invoice, entity=erp_entity, idempotency_key=key)
            )
        times, expenses, milestone_ids = (
            list(rated.time_entry_ids),
            list(rated.expense_ids),
            list(rated.milestone_ids),
        )
        number = posted.number
        for start in range(0, max(len(times), len(expenses), len(milestone_ids)), MARK_BILLED_CHUNK):
            chunk = slice(start, start + MARK_BILLED_CHUNK)
            await self._call(
                lambda c=chunk: psa.mark_billed(  # type: ignore[misc]
                    time_entry_ids=times[c],
                    expense_ids=expenses[c],
                    invoice_number=number,
                    milestone_ids=milestone_ids[c],
                )
            )
        return Billed(project_id=project_id, invoice=posted, time_entries=len(times), expenses=len(expenses))

    async def bill_all(
        self, project_ids: Sequence[str], period: str, *, parallel: int
    ) -> tuple[float, list[Billed]]:
        """Bill every project with `parallel` in flight; returns the wall time and what was billed."""
        gate = asyncio.Semaphore(parallel)

        async def one(project_id: str) -> Billed:
            async with gate:
                return await self.bill_project(project_id, period)

        started = time.perf_counter()
        billed = await asyncio.gather(*(one(p) for p in project_ids))
        return time.perf_counter() - started, list(billed)
