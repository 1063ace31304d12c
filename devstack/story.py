"""The demo story: a closed-won deal travels through CRM, PSA and ERP until its invoice is paid.

Everything a person would do happens through the vendors' APIs (the sandboxes and Tryton) and the
ingress; everything ps-sync does happens in its workflows. The story only watches and waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
from temporalio.client import Client, WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from canonical import Money, Period
from config import Settings
from connectors.tryton.connector import TrytonConnector
from domain.payables import vendor_supplier
from ingress.identity import mint_dev_token
from ingress.month_end import close_period, format_close
from ledger.contract_versions import contract_versions
from ledger.database import Database
from ledger.month_end import set_percentage_of_completion
from ledger.repository import get_contract, postings_for
from runs import payables as payables_runs
from runs.invoice_to_cash import InvoiceToCashResult
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.reference_sync import ReferenceSyncInput
from runs.time_to_billing import TimeToBillingResult
from runs.time_to_billing import workflow_id as ttb_id
from sandboxes.kantata.seed import Consultant, KantataSeeder, TimeLog
from sandboxes.plugin import discover as discover_sandboxes
from sandboxes.salesforce.seed import DealIds, SalesforceSeeder
from sandboxes.xero.seed import XeroFinanceUser
from workflows.reference_sync import ReferenceSync
from workflows.time_to_billing import TimeToBilling

SERVICE_CODE = "ADV-TM"
BILLING_MODEL = "Time and Materials"
TEAM = (
    ("Dana Whitfield", "dana.whitfield@northwind.example", "Senior Consultant"),
    ("Omar Haddad", "omar.haddad@northwind.example", "Consultant"),
)
RATES = {
    "GBP": {"Senior Consultant": Money.of("150", "GBP"), "Consultant": Money.of("100", "GBP")},
    "EUR": {"Senior Consultant": Money.of("170", "EUR"), "Consultant": Money.of("115.50", "EUR")},
    "USD": {"Senior Consultant": Money.of("195", "USD"), "Consultant": Money.of("132.50", "USD")},
}


# Finance's account mapping for the demo firm: (entity, kind, key, account, cost account). Codes are the
# Xero organisation's (sandboxes/xero/chart.py) and the Tryton company's (devstack/tryton_entity.py).
ACCOUNT_MAPPING: tuple[tuple[str, str, str, str, str | None], ...] = (
    ("UK", "service", SERVICE_CODE, "200", None),
    ("UK", "service", "*", "200", None),
    ("UK", "expense_category", "*", "260", "493"),
    ("UK", "milestone", "*", "200", None),
    ("UK", "retainer", "*", "200", None),
    # Subcontracted time books to its role's cost account (Cost of Goods Sold), any role alike.
    ("UK", "role", "*", "200", "310"),
    ("EU", "service", SERVICE_CODE, "4.1.2", None),
    ("EU", "service", "*", "4.1.2", None),
    ("EU", "expense_category", "*", "4.3.3", "5.1.3"),
    ("EU", "milestone", "*", "4.1.2", None),
    ("EU", "retainer", "*", "4.1.2", None),
    ("EU", "role", "*", "4.1.2", "5.1.3"),
)

# Where month-end's journals book each account role (`pssync accounts set UK journal wip --account 630`):
# (entity, role, account). Xero: the organisation's Sales, Deferred Revenue, Accrued Revenue, Work in
# Progress, Direct Labour and Payroll Cost Clearing; Tryton: the generic chart's services revenue, deferred
# income, accrued income, work in process, cost of sales and accrued expenses (including payroll).
MONTH_END_ACCOUNTS: tuple[tuple[str, str, str], ...] = (
    ("UK", "revenue", "200"),
    ("UK", "deferred_revenue", "835"),
    ("UK", "accrued_revenue", "615"),
    ("UK", "wip", "630"),
    ("UK", "labour_cost", "320"),
    ("UK", "cost_clearing", "840"),
    ("EU", "revenue", "4.1.2"),
    ("EU", "deferred_revenue", "2.2.2"),
    ("EU", "accrued_revenue", "1.4.2"),
    ("EU", "wip", "1.3.3"),
    ("EU", "labour_cost", "5.2.1"),
    ("EU", "cost_clearing", "2.2.1"),
)
# What an hour of each of the team costs the firm, per currency: labour cost at month-end.
TEAM_COST_RATES = {
    "GBP": {"Senior Consultant": Money.of("83.45", "GBP"), "Consultant": Money.of("61.37", "GBP")},
    "EUR": {"Senior Consultant": Money.of("94.10", "EUR"), "Consultant": Money.of("69.85", "EUR")},
    "USD": {"Senior Consultant": Money.of("106.20", "USD"), "Consultant": Money.of("78.95", "USD")},
}
# A late day the team logs after the month was billed: approved, unbilled work at month-end (WIP), in
# minutes that do not make whole hours.
LATE_MINUTES = 445
# A fixed-fee implementation the firm recognises by hours worked against its budget.
FIXED_FEE = Decimal("10000.00")
FIXED_FEE_BUDGET_HOURS = Decimal("80")
# What a change order raises it to after the sale.
CHANGED_FEE = Decimal("12000.00")


# The ERPs whose connectors keep payables (`ErpPayables`), and what the demo's consultant claims.
PAYABLES_ERPS = ("xero", "tryton")
TAXI_FARE = "38.60"
# The demo's subcontractor: the firm they work for, what an hour of theirs costs, and the minutes they log
# (7 h 25 min: hours that do not terminate, billed as the ERP keeps them).
SUBCONTRACTING_FIRM = "Northwind Contractors Ltd"
SUBCONTRACTOR_COST_RATE = "61.37"
SUBCONTRACTOR_MINUTES = 445


class StoryFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class DealPlan:
    entity: str
    account_name: str
    country: str
    city: str
    postal_code: str
    street: str
    currency: str
    days_worked: int = 5
    # The productised service sold, and how the opportunity names the work.
    service_code: str = SERVICE_CODE
    work: str = "advisory"
    billing_model: str = BILLING_MODEL
    amount: Decimal = Decimal("40000.00")


@dataclass
class DealOutcome:
    plan: DealPlan
    opportunity_id: str
    account_id: str
    opportunity_workflow: str
    project_id: str
    erp: str
    erp_customer_id: str
    billing_workflow: str
    invoice_id: str
    invoice_number: str
    invoice_total: Money
    cash_workflow: str
    outcome: str

    @property
    def paid(self) -> bool:
        return self.outcome == "paid"


def previous_period(today: date) -> Period:
    """Month-end billing: the story logs time in the month that has just closed."""
    return Period.of(today.replace(day=1) - timedelta(days=1))


def working_days(period: Period, count: int) -> list[date]:
    days: list[date] = []
    day = period.first_day
    while len(days) < count and day <= period.last_day:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


class Story:
    def __init__(
        self,
        settings: Settings,
        client: Client,
        *,
        say: Callable[[str], None] = print,
        step_seconds: float = 180.0,
    ) -> None:
        self._settings = settings
        # How long any one step (a workflow appearing, reaching a stage, finishing) may take.
        self._step_seconds = step_seconds
        self._client = client
        self._say = say
        self._team: list[Consultant] = []

    async def prepare(self) -> None:
        """Reference data a firm has before any deal: consultants with roles and rate cards per currency."""
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            self._team = [await kantata.consultant(name, email, role) for name, email, role in TEAM]
            effective = date(datetime.now(UTC).year - 1, 1, 1)
            for currency, rates in RATES.items():
                await kantata.rate_card(currency, {effective: rates})
            # Before any time is logged: Kantata fixes an entry's cost rate when it is logged.
            for person in self._team:
                for costs in TEAM_COST_RATES.values():
                    await kantata.cost_rate(person.user_id, costs[person.role])
        self._say(f"Kantata: {len(self._team)} consultants, rate cards and cost rates in {', '.join(RATES)}")

    async def map_accounts(self) -> None:
        """Finance maps where the firm's invoice lines book, through the ingress, signed in as a person."""
        token = self._person("finance.lead", "finance")
        entities = {entity.code for entity in self._settings.entities}
        rules = [rule for rule in ACCOUNT_MAPPING if rule[0] in entities]
        async with httpx.AsyncClient(base_url=self._settings.ingress_public_url, timeout=30) as ingress:
            for entity, kind, key, account, cost in rules:
                response = await ingress.put(
                    f"/account-mappings/{entity}/{kind}/{quote(key, safe='')}",
                    json={"account_code": account, "cost_account_code": cost},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code != 200:
                    raise StoryFailed(f"account mapping refused: {response.status_code} {response.text}")
        self._say(f"Finance: {len(rules)} account mappings set through the ingress")

    async def play(self, plan: DealPlan) -> DealOutcome:
        stamp = datetime.now(UTC).strftime("%H%M%S%f")[:-3]
        deal = await self.close_a_deal(plan, stamp)
        created = await self.result(o2p_id("salesforce", deal.opportunity_id), OpportunityToProjectResult)
        self._say(
            f"[{plan.entity}] OpportunityToProject done: Kantata project {created.project_id}, "
            f"{created.erp} customer {created.erp_customer_id}"
        )

        period = previous_period(datetime.now(UTC).date())
        await self.log_and_approve_time(created.project_id, period, plan.days_worked)
        billing_id = ttb_id(created.project_id, period.value)
        await self.approve_when_asked(billing_id, created.project_id, period)
        billed = await self.result(billing_id, TimeToBillingResult)
        if billed.outcome != "posted" or billed.invoice is None or billed.invoice_to_cash_workflow_id is None:
            raise StoryFailed(f"billing run {billing_id} ended {billed.outcome}: {billed.reason}")
        invoice = billed.invoice
        self._say(
            f"[{plan.entity}] TimeToBilling posted {created.erp} invoice {invoice.number} "
            f"for {invoice.total} (net), {billed.time_entries_billed} entries marked billed"
        )

        await self.pay(created.erp, invoice.invoice_id, stamp)
        cash = await self.result(billed.invoice_to_cash_workflow_id, InvoiceToCashResult)
        self._say(f"[{plan.entity}] InvoiceToCash ended {cash.outcome}: paid {cash.summary.amount_paid}")
        return DealOutcome(
            plan=plan,
            opportunity_id=deal.opportunity_id,
            account_id=deal.account_id,
            opportunity_workflow=o2p_id("salesforce", deal.opportunity_id),
            project_id=created.project_id,
            erp=created.erp,
            erp_customer_id=created.erp_customer_id,
            billing_workflow=billing_id,
            invoice_id=invoice.invoice_id,
            invoice_number=invoice.number,
            invoice_total=invoice.total,
            cash_workflow=billed.invoice_to_cash_workflow_id,
            outcome=cash.outcome,
        )

    async def close_a_deal(self, plan: DealPlan, stamp: str) -> DealIds:
        async with SalesforceSeeder(self._settings.salesforce_base_url) as salesforce:
            deal = await salesforce.create_customer_deal(
                account_name=f"{plan.account_name} {stamp}",
                country=plan.country,
                city=plan.city,
                street=plan.street,
                postal_code=plan.postal_code,
                currency=plan.currency,
                legal_entity=plan.entity,
                tax_code=self._settings.entity(plan.entity).default_tax_code,
                service_code=plan.service_code,
                billing_model=plan.billing_model,
                opportunity_name=f"{plan.account_name} {plan.work} {stamp}",
                amount=plan.amount,
                # A manager Kantata knows (prepare() invites the team), so the project gets its lead.
                project_manager=TEAM[0][0],
            )
            await salesforce.close_won(deal.opportunity_id)
        self._say(f"[{plan.entity}] Salesforce: opportunity {deal.opportunity_id} closed won")
        return deal

    async def log_and_approve_time(self, project_id: str, period: Period, days: int) -> None:
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            await kantata.add_to_project(project_id, self._team)
            logs = [
                TimeLog(user_id=person.user_id, day=day, minutes=480, notes=f"{person.role} work")
                for person in self._team
                for day in working_days(period, days)
            ]
            entry_ids = await kantata.log_time(project_id, logs)
            await kantata.submit_and_approve(project_id, entry_ids)
        self._say(f"Kantata: {len(logs)} time entries in {period} logged and approved on {project_id}")

    async def approve_when_asked(self, billing_id: str, project_id: str, period: Period) -> None:
        handle = await self.handle(billing_id)
        deadline = time.monotonic() + self._step_seconds
        while True:
            status = await handle.query(TimeToBilling.status)
            if status.stage in ("awaiting_approval", "approval_reminded", "approval_escalated"):
                break
            if status.stage in ("done", "nothing_to_bill", "blocked") or time.monotonic() > deadline:
                raise StoryFailed(f"{billing_id} never asked for approval (stage {status.stage})")
            await asyncio.sleep(0.5)
        pending = await handle.query(TimeToBilling.pending_approval)
        if pending is None:
            raise StoryFailed(f"{billing_id} asked for approval but shows nothing waiting")
        self._say(f"Finance: approving {pending.total} (version {pending.version}) through the ingress")
        # The finance lead signs in as a person: the run records who approved, not a shared role token.
        token = self._person("finance.lead", "finance")
        async with httpx.AsyncClient(base_url=self._settings.ingress_public_url, timeout=30) as ingress:
            response = await ingress.post(
                f"/billing-runs/{project_id}/{period.value}/approve",
                json={
                    "invoice_version": pending.version,
                    "expected_total": pending.total.model_dump(mode="json"),
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            if response.status_code != 200:
                raise StoryFailed(f"approval refused: {response.status_code} {response.text}")

    async def pay(self, erp: str, invoice_id: str, stamp: str) -> None:
        if erp == "xero":
            finance = XeroFinanceUser.from_settings(self._settings)
            try:
                invoice = await finance.get_invoice(invoice_id)
                amount = Decimal(str(invoice["AmountDue"]))
                await finance.apply_payment(invoice_id, amount, reference=f"BACS {stamp}")
            finally:
                await finance.aclose()
        elif erp != "tryton":
            # A sandboxed ERP that plugs in (sandboxes/plugin.py) settles it as its finance people would.
            plugin = next((p for p in discover_sandboxes() if p.name == erp), None)
            if plugin is None:
                raise StoryFailed(f"no sandbox can pay {erp} invoice {invoice_id}")
            await plugin.pay(self._settings, invoice_id, f"ACH {stamp}")
        else:
            tryton = TrytonConnector.from_settings(self._settings)
            try:
                status = await tryton.get_invoice(invoice_id)
                await tryton.apply_payment(
                    invoice_id,
                    status.amount_due,
                    reference=f"SEPA {stamp}",
                    idempotency_key=f"demo-payment-{invoice_id}",
                )
            finally:
                await tryton.aclose()
        self._say(f"Finance: payment applied in {erp} to invoice {invoice_id}")

    async def handle(self, workflow_id: str) -> WorkflowHandle[Any, Any]:
        """The run once it exists: it is started by a webhook or the feed poller, not by the story."""
        deadline = time.monotonic() + self._step_seconds
        handle = self._client.get_workflow_handle(workflow_id)
        while True:
            try:
                await handle.describe()
                return handle
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise StoryFailed(f"workflow {workflow_id} did not start: {err}") from err
            await asyncio.sleep(0.3)

    async def result(self, workflow_id: str, result_type: type[Any]) -> Any:
        handle = await self.handle(workflow_id)
        typed = self._client.get_workflow_handle(workflow_id, result_type=result_type)
        try:
            return await asyncio.wait_for(typed.result(), self._step_seconds)
        except TimeoutError as err:
            description = await handle.describe()
            raise StoryFailed(
                f"{workflow_id} still {description.status} after {self._step_seconds:.0f}s"
            ) from err

    # --- payables -------------------------------------------------------------------------------------------

    async def play_payables(self, deals: list[tuple[DealPlan, str]]) -> payables_runs.PayablesResult:
        """A consultant claims a taxi fare as reimbursable on each deal's Kantata project (plan, project id)
        whose ERP keeps payables; finance runs the payables scan, ps-sync bills the consultant as a supplier
        (one bill per entity), finance pays the bills and ps-sync marks the expenses reimbursed."""
        projects = [
            (plan, project_id) for plan, project_id in deals if self._erp_of(plan.entity) in PAYABLES_ERPS
        ]
        if not projects:
            raise StoryFailed("no deal was booked in an ERP that keeps payables")
        person = self._team[1]
        now = datetime.now(UTC)
        today, stamp = now.date(), now.strftime("%H%M%S%f")
        period = Period.of(today)
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            for plan, project_id in projects:
                await kantata.log_expense(
                    project_id,
                    day=today,
                    amount=Money.of(TAXI_FARE, plan.currency),
                    category="Travel",
                    user_id=person.user_id,
                    billable=False,
                    reimbursable=True,
                    notes="Taxi to the client's office",
                )
        self._say(f"Kantata: {person.full_name} claims {len(projects)} reimbursable taxi fares")
        scan = await self._client.execute_workflow(
            payables_runs.SCAN_WORKFLOW_TYPE,
            payables_runs.PayablesScanInput(
                psa=self._settings.psa, period=period.value, poll_interval_seconds=2
            ),
            id=f"{payables_runs.scan_workflow_id(self._settings.psa, period.value)}:{stamp}",
            task_queue=self._settings.task_queue,
            result_type=payables_runs.PayablesScanResult,
        )
        run_id = payables_runs.workflow_id(
            self._settings.psa, f"person:{self._settings.psa}:{person.user_id}", period.value
        )
        if run_id not in scan.started:
            raise StoryFailed(f"the payables scan did not start {run_id}: {scan.started}")
        handle = await self.handle(run_id)
        deadline = time.monotonic() + self._step_seconds
        while True:
            status = await handle.query("status", result_type=payables_runs.PayablesStatus)
            unpaid = [bill for bill in status.bills if not bill.settled]
            if len(unpaid) >= len(projects):
                break
            if status.stage == "nothing_to_bill" or time.monotonic() > deadline:
                raise StoryFailed(
                    f"{run_id} billed {len(unpaid)} of {len(projects)} expenses ({status.stage})"
                )
            await asyncio.sleep(0.5)
        for bill in unpaid:
            self._say(
                f"[{bill.legal_entity}] Payables billed {bill.number} to {person.full_name}: {bill.total}"
            )
            await self._pay_bill(bill.legal_entity, bill.bill_id, bill.total)
        result: payables_runs.PayablesResult = await self.result(run_id, payables_runs.PayablesResult)
        if result.outcome != "reimbursed":
            raise StoryFailed(f"{run_id} ended {result.outcome}: {'; '.join(result.problems)}")
        self._say(f"Payables: {len(result.bills)} bills paid, the expenses are marked reimbursed in Kantata")
        return result

    async def play_subcontracted_time(
        self, deals: list[tuple[DealPlan, str]]
    ) -> payables_runs.PayablesResult:
        """A subcontractor of Northwind Contractors Ltd logs a day on the first deal's project whose ERP keeps
        payables, and the manager approves it; finance runs the payables scan, ps-sync bills the firm at the
        subcontractor's cost rate, finance pays the bill and ps-sync marks the time paid in Kantata."""
        plan, project_id = next(
            ((plan, project_id) for plan, project_id in deals if self._erp_of(plan.entity) in PAYABLES_ERPS),
            (None, None),
        )
        if plan is None or project_id is None:
            raise StoryFailed("no deal was booked in an ERP that keeps payables")
        now = datetime.now(UTC)
        today, stamp = now.date(), now.strftime("%H%M%S%f")
        period = Period.of(today)
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            person = await kantata.consultant(
                "Sam Okafor", "sam.okafor@northwind-contractors.example", "Consultant"
            )
            await kantata.works_for(person.user_id, SUBCONTRACTING_FIRM)
            await kantata.cost_rate(person.user_id, Money.of(SUBCONTRACTOR_COST_RATE, plan.currency))
            await kantata.add_to_project(project_id, [person])
            entries = await kantata.log_time(
                project_id, [TimeLog(user_id=person.user_id, day=today, minutes=SUBCONTRACTOR_MINUTES)]
            )
            await kantata.submit_and_approve(project_id, entries)
        self._say(
            f"Kantata: {person.full_name} of {SUBCONTRACTING_FIRM} logs {SUBCONTRACTOR_MINUTES} minutes at a "
            f"cost of {SUBCONTRACTOR_COST_RATE} {plan.currency}/h"
        )
        scan = await self._client.execute_workflow(
            payables_runs.SCAN_WORKFLOW_TYPE,
            payables_runs.PayablesScanInput(
                psa=self._settings.psa, period=period.value, poll_interval_seconds=2
            ),
            id=f"{payables_runs.scan_workflow_id(self._settings.psa, period.value)}:subcontracted:{stamp}",
            task_queue=self._settings.task_queue,
            result_type=payables_runs.PayablesScanResult,
        )
        run_id = payables_runs.workflow_id(
            self._settings.psa, vendor_supplier(SUBCONTRACTING_FIRM).key, period.value
        )
        if run_id not in scan.started:
            raise StoryFailed(f"the payables scan did not start {run_id}: {scan.started}")
        handle = await self.handle(run_id)
        deadline = time.monotonic() + self._step_seconds
        while True:
            status = await handle.query("status", result_type=payables_runs.PayablesStatus)
            unpaid = [bill for bill in status.bills if not bill.settled]
            if unpaid:
                break
            if status.stage == "nothing_to_bill" or time.monotonic() > deadline:
                raise StoryFailed(f"{run_id} billed no subcontracted time ({status.stage})")
            await asyncio.sleep(0.5)
        for bill in unpaid:
            self._say(
                f"[{bill.legal_entity}] Payables billed {bill.number} to {SUBCONTRACTING_FIRM}: {bill.total}"
            )
            await self._pay_bill(bill.legal_entity, bill.bill_id, bill.total)
        result: payables_runs.PayablesResult = await self.result(run_id, payables_runs.PayablesResult)
        if result.outcome != "reimbursed":
            raise StoryFailed(f"{run_id} ended {result.outcome}: {'; '.join(result.problems)}")
        self._say("Payables: the subcontractor's bill is paid, their time marked paid in Kantata")
        return result

    def _erp_of(self, legal_entity: str) -> str:
        return self._settings.entity(legal_entity).erp

    async def _pay_bill(self, legal_entity: str, bill_id: str, amount: Money) -> None:
        erp = self._erp_of(legal_entity)
        if erp == "xero":
            finance = XeroFinanceUser.from_settings(self._settings)
            try:
                await finance.apply_payment(bill_id, amount.amount, reference="Expenses BACS")
            finally:
                await finance.aclose()
        else:
            tryton = TrytonConnector.from_settings(self._settings)
            try:
                await tryton.pay_bill(
                    bill_id, amount, reference="Expenses SEPA", idempotency_key=f"demo-bill-{bill_id}"
                )
            finally:
                await tryton.aclose()
        self._say(f"Finance: bill {bill_id} paid in {erp}")

    # --- an exception fixed and retried ---------------------------------------------------------------------

    async def play_exception_fixed_and_retried(self, plan: DealPlan | None = None) -> ExceptionStoryOutcome:
        """A deal closed without its tax code: OpportunityToProject parks it with a sales-ops exception; sales
        ops reads it through the ingress, fixes the opportunity in Salesforce (its REST API) and retries
        through the ingress; the same run continues and the project is created."""
        plan = plan or UK_DEAL
        stamp = datetime.now(UTC).strftime("%H%M%S%f")[:-3]
        async with SalesforceSeeder(self._settings.salesforce_base_url) as salesforce:
            deal = await salesforce.create_customer_deal(
                account_name=f"{plan.account_name} (incomplete) {stamp}",
                country=plan.country,
                city=plan.city,
                street=plan.street,
                postal_code=plan.postal_code,
                currency=plan.currency,
                legal_entity=plan.entity,
                service_code=SERVICE_CODE,
                billing_model=BILLING_MODEL,
                opportunity_name=f"{plan.account_name} advisory {stamp}",
                amount=Decimal("12000.00"),
                project_manager=TEAM[0][0],
                omit=("Tax_Code__c",),
            )
            await salesforce.close_won(deal.opportunity_id)
        self._say(
            f"[{plan.entity}] Salesforce: opportunity {deal.opportunity_id} closed won without a tax code"
        )

        async with httpx.AsyncClient(
            base_url=self._settings.ingress_public_url,
            timeout=30,
            headers={"Authorization": f"Bearer {self._person('sales.ops', 'ops')}"},
        ) as ingress:
            item = await self._open_exception_for(ingress, deal.opportunity_id)
            self._say(f"Sales ops: exception #{item['id']} ({item['owner']}): {item['reason']}")

            tax_code = self._settings.entity(plan.entity).default_tax_code
            async with SalesforceSeeder(self._settings.salesforce_base_url) as salesforce:
                await salesforce.update("Opportunity", deal.opportunity_id, {"Tax_Code__c": tax_code})
            self._say(f"Sales ops: set the tax code to {tax_code} on the opportunity in Salesforce")

            response = await ingress.post(
                f"/exceptions/{item['id']}/retry",
                json={"note": f"tax code set to {tax_code}"},
            )
            if response.status_code != 202:
                raise StoryFailed(f"retry refused: {response.status_code} {response.text}")
            action_workflow = response.json()["action_workflow_id"]
            self._say(f"Sales ops: retried exception #{item['id']} through the ingress ({action_workflow})")

            created = await self.result(o2p_id("salesforce", deal.opportunity_id), OpportunityToProjectResult)
            resolved = await self._exception_settled(ingress, int(item["id"]))
        self._say(
            f"[{plan.entity}] OpportunityToProject went on: Kantata project {created.project_id}; "
            f"exception #{item['id']} {resolved['status']}"
        )
        return ExceptionStoryOutcome(
            opportunity_id=deal.opportunity_id,
            exception_id=int(item["id"]),
            reason=str(item["reason"]),
            action_workflow=action_workflow,
            opportunity_workflow=o2p_id("salesforce", deal.opportunity_id),
            project_id=created.project_id,
            exception_status=str(resolved["status"]),
        )

    async def play_fixed_fee(self, plan: DealPlan) -> str:
        """A fixed-fee implementation won for the plan's entity, two days of its first month worked, and
        finance recognising it by hours against an 80-hour budget (as `pssync recognition set` does): the
        month-end close recognises fee x hours / budget and, nothing being invoiced yet, accrues it. Returns
        the project's id."""
        fixed = replace(
            plan, service_code="IMP-FF", billing_model="Fixed Fee", amount=FIXED_FEE, work="implementation"
        )
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            effective = date(datetime.now(UTC).year - 1, 1, 1)
            # The service's own rate card set, as the firm keeps one per productised service.
            await kantata.rate_card(
                plan.currency, {effective: RATES[plan.currency]}, set_title="Implementation"
            )
        stamp = datetime.now(UTC).strftime("%H%M%S%f")[:-3]
        deal = await self.close_a_deal(fixed, stamp)
        created = await self.result(o2p_id("salesforce", deal.opportunity_id), OpportunityToProjectResult)
        period = previous_period(datetime.now(UTC).date())
        await self.log_and_approve_time(created.project_id, period, days=2)
        database = Database.from_url(self._settings.database_url)
        try:
            with database.session() as session:
                set_percentage_of_completion(
                    session,
                    psa=self._settings.psa,
                    project_id=created.project_id,
                    budget_hours=FIXED_FEE_BUDGET_HOURS,
                    actor="finance.lead@northwind.example",
                )
        finally:
            database.dispose()
        self._say(
            f"[{plan.entity}] fixed fee {FIXED_FEE} {plan.currency}: Kantata project {created.project_id}, "
            f"recognised by hours against a {FIXED_FEE_BUDGET_HOURS}-hour budget"
        )
        return str(created.project_id)

    async def play_change_order(self, plan: DealPlan, project_id: str) -> str:
        """Sales raises the won fixed fee to 12,000 in Salesforce: the org's outbound message reaches the
        ingress, ps-sync records contract version 2 and re-prices the Kantata milestones; the design
        milestone is then signed off and billed now at its new charge (40% of the new fee). Returns what
        the invoice billed."""
        database = Database.from_url(self._settings.database_url)
        try:
            with database.session() as session:
                contract = get_contract(session, psa=self._settings.psa, project_id=project_id)
            if contract is None:
                raise StoryFailed(f"project {project_id} has no contract in the ledger")
            async with SalesforceSeeder(self._settings.salesforce_base_url) as salesforce:
                await salesforce.update("Opportunity", contract.opportunity_id, {"Amount": CHANGED_FEE})
            self._say(f"[{plan.entity}] Salesforce: change order, fee {FIXED_FEE} -> {CHANGED_FEE}")
            deadline = time.monotonic() + self._step_seconds
            while True:
                with database.session() as session:
                    versions = contract_versions(session, psa=self._settings.psa, project_id=project_id)
                if len(versions) >= 2:
                    break
                if time.monotonic() > deadline:
                    raise StoryFailed(
                        f"the change order on {contract.opportunity_id} made no contract version"
                    )
                await asyncio.sleep(0.3)
        finally:
            database.dispose()
        self._say(f"[{plan.entity}] ContractAmendment: contract version {versions[-1].version} recorded")
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            milestone_id = await kantata.complete_milestone(project_id, "Design sign-off")
        period = Period.of(datetime.now(UTC).date())
        token = self._person("pmo.lead", "pmo")
        async with httpx.AsyncClient(base_url=self._settings.ingress_public_url, timeout=30) as ingress:
            response = await ingress.post(
                f"/billing-runs/{project_id}/{period.value}/bill-now",
                json={"milestone_id": milestone_id},
                headers={"Authorization": f"Bearer {token}"},
            )
        if response.status_code != 202:
            raise StoryFailed(f"bill now refused: {response.status_code} {response.text}")
        billing_id = ttb_id(project_id, period.value)
        await self.approve_when_asked(billing_id, project_id, period)
        # The month is still open, so the run goes on after posting, for work yet to come: the ledger's
        # posting says what it billed.
        database = Database.from_url(self._settings.database_url)
        try:
            deadline = time.monotonic() + self._step_seconds
            while True:
                with database.session() as session:
                    posted = postings_for(session, project_id=project_id, period=period.value)
                if posted and posted[-1].number is not None:
                    break
                if time.monotonic() > deadline:
                    raise StoryFailed(f"{billing_id} did not post the milestone")
                await asyncio.sleep(0.5)
        finally:
            database.dispose()
        text = f"invoice {posted[-1].number}: {posted[-1].amount}"
        self._say(f"[{plan.entity}] Design sign-off billed at the amended charge: {text}")
        return text

    async def play_month_end(self, deals: list[tuple[DealPlan, str]]) -> list[str]:
        """Finance maps month-end's accounts and a late day is approved after billing; then each entity's
        month is closed as `pssync close` does (the entities whose ERP keeps journals: those
        MONTH_END_ACCOUNTS maps). Returns what each close printed."""
        period = previous_period(datetime.now(UTC).date())
        mapped = {entity for entity, _, _ in MONTH_END_ACCOUNTS}
        deals = [(plan, project_id) for plan, project_id in deals if plan.entity in mapped]
        entities = sorted({plan.entity for plan, _ in deals})
        # The charts as the ERPs hold them now (a stack kept from before may have synced them without the
        # month-end accounts): the mapping is checked against what was last synced.
        await self._client.execute_workflow(
            ReferenceSync.run,
            ReferenceSyncInput(
                entities=tuple(self._settings.entity(code) for code in entities), psa=self._settings.psa
            ),
            id=f"reference-sync:story-month-end-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S%f')}",
            task_queue=self._settings.task_queue,
        )
        token = self._person("finance.lead", "finance")
        async with httpx.AsyncClient(base_url=self._settings.ingress_public_url, timeout=30) as ingress:
            for entity, role, account in MONTH_END_ACCOUNTS:
                if entity not in entities:
                    continue
                response = await ingress.put(
                    f"/account-mappings/{entity}/journal/{role}",
                    json={"account_code": account, "cost_account_code": None},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if response.status_code != 200:
                    raise StoryFailed(
                        f"month-end account mapping refused: {response.status_code} {response.text}"
                    )
        async with KantataSeeder.for_sandbox(self._settings.kantata_base_url) as kantata:
            for _, project_id in deals:
                last_day = working_days(period, 31)[-1]
                logs = [TimeLog(p.user_id, last_day, LATE_MINUTES, notes="late") for p in self._team]
                await kantata.submit_and_approve(project_id, await kantata.log_time(project_id, logs))
        self._say(f"Finance: month-end accounts mapped for {', '.join(entities)}; a late day approved")
        printed = []
        for entity in entities:
            result = await close_period(
                self._client, self._settings, legal_entity=entity, period=period.value
            )
            printed.append(format_close(result))
            self._say(printed[-1])
        return printed

    def _person(self, name: str, role: str) -> str:
        """A development token for a named person: what they do is recorded against them."""
        return mint_dev_token(self._settings, name, role, subject=f"{name}@northwind.example")

    async def _open_exception_for(self, ingress: httpx.AsyncClient, opportunity_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._step_seconds
        while True:
            response = await ingress.get(
                "/exceptions", params={"process": "opportunity_to_project", "status": "open"}
            )
            if response.status_code != 200:
                raise StoryFailed(f"exceptions list refused: {response.status_code} {response.text}")
            for item in response.json()["items"]:
                # Salesforce ids come in 15- and 18-character forms; the first 15 name the record.
                if str(item["record"].get("opportunity_id", ""))[:15] == opportunity_id[:15]:
                    return dict(item)
            if time.monotonic() > deadline:
                raise StoryFailed(f"no exception was raised for incomplete opportunity {opportunity_id}")
            await asyncio.sleep(0.3)

    async def _exception_settled(self, ingress: httpx.AsyncClient, exception_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + self._step_seconds
        while True:
            response = await ingress.get(f"/exceptions/{exception_id}")
            item = dict(response.json())
            if item.get("status") not in ("open", "retrying") or time.monotonic() > deadline:
                return item
            await asyncio.sleep(0.3)


@dataclass
class ExceptionStoryOutcome:
    opportunity_id: str
    exception_id: int
    reason: str
    action_workflow: str
    opportunity_workflow: str
    project_id: str
    exception_status: str


UK_DEAL = DealPlan(
    entity="UK",
    account_name="Globex UK",
    country="GB",
    city="London",
    postal_code="EC1A 1AA",
    street="1 Market Street",
    currency="GBP",
)
# The EU deal is digital delivery, a service of the firm's Digital practice: its Kantata project is filed
# under it, and its Tryton invoice lines carry a Practice analytic account besides project and customer.
EU_DEAL = DealPlan(
    entity="EU",
    account_name="Initech Benelux",
    country="NL",
    city="Amsterdam",
    postal_code="1012 AB",
    street="Damrak 1",
    currency="EUR",
    service_code="DIG-TM",
    work="digital delivery",
)
US_DEAL = DealPlan(
    entity="US",
    account_name="Umbrella Corp",
    country="US",
    city="Austin",
    postal_code="78701",
    street="600 Congress Ave",
    currency="USD",
)
