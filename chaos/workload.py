"""The deals a chaos run plays, as the firm's people would, while the world is shaken under ps-sync.

Each deal goes closed won in Salesforce -> project (OpportunityToProject) -> time logged and approved in
Kantata -> invoice (TimeToBilling, approved through the ingress when the entity's threshold asks for it)
-> payment applied in the ERP -> paid (InvoiceToCash). The people's own calls go straight to the vendors
and are never faulted; ps-sync's are. Anything ps-sync does not finish within the deal's deadline is
recorded as stuck, with the run and the stage it stopped at.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx
from temporalio.client import WorkflowExecutionStatus

from canonical import Money, Period
from chaos.temporal_waits import Runs, RunStuck
from config import Settings
from devstack.story import EU_DEAL, UK_DEAL, DealPlan, Story
from ingress.identity import mint_dev_token
from runs.invoice_to_cash import InvoiceToCashResult
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.opportunity_to_project import workflow_id as o2p_id
from runs.time_to_billing import PendingApproval, TimeToBillingResult, TimeToBillingStatus
from runs.time_to_billing import workflow_id as ttb_id

APPROVAL_STAGES = ("awaiting_approval", "approval_reminded", "approval_escalated")
# Stages where a billing run waits for a person to fix something: chaos plays no such person, so a run
# found there is stuck (and says why in its exception).
PARKED_STAGES = ("blocked", "posting_rejected", "marking_failed", "rejected")
POLL_SECONDS = 1.0
VISIBILITY_ROUNDS = 10
FINANCE = ("finance.lead", "finance")
PLANS = {"UK": UK_DEAL, "EU": EU_DEAL}


@dataclass
class Deal:
    number: int
    entity: str
    days: int
    stamp: str
    plan: DealPlan
    account_name: str = ""
    opportunity_id: str = ""
    account_id: str = ""
    project_id: str | None = None
    erp: str | None = None
    erp_customer_id: str | None = None
    billing_workflow: str | None = None
    approved: bool = False
    invoice_id: str | None = None
    invoice_number: str | None = None
    invoice_total: Money | None = None
    entries_billed: int = 0
    cash_workflow: str | None = None
    payment_applied: bool = False
    outcome: str | None = None
    stuck: str | None = None
    seconds: float | None = None

    @property
    def paid(self) -> bool:
        return self.outcome == "paid"


def make_deals(entities: tuple[str, ...], days: tuple[int, ...]) -> list[Deal]:
    run = uuid.uuid4().hex[:6]
    deals = []
    for number, (entity, worked) in enumerate(zip(entities, days, strict=True), start=1):
        plan = replace(PLANS[entity], days_worked=worked)
        deals.append(
            Deal(number=number, entity=entity, days=worked, stamp=f"chaos-{run}-{number:02d}", plan=plan)
        )
    return deals


class Workload:
    def __init__(
        self,
        settings: Settings,
        runs: Runs,
        story: Story,
        *,
        period: Period,
        deal_seconds: float,
        say: Callable[[str], None],
        billing_started: Callable[[str], None],
        billing_finished: Callable[[str], None],
    ) -> None:
        self._settings = settings
        self._runs = runs
        self._story = story
        self._period = period
        self._deal_seconds = deal_seconds
        self._say = say
        self._billing_started = billing_started
        self._billing_finished = billing_finished

    async def play_all(self, deals: list[Deal], parallel: int) -> None:
        gate = asyncio.Semaphore(parallel)

        async def one(deal: Deal) -> None:
            async with gate:
                await self.play(deal)

        await asyncio.gather(*(one(deal) for deal in deals))

    async def play(self, deal: Deal) -> None:
        started = time.monotonic()
        deadline = started + self._deal_seconds
        try:
            await self._play(deal, deadline)
        except RunStuck as stuck:
            deal.stuck = str(stuck)
            self._say(f"[deal {deal.number} {deal.entity}] STUCK: {stuck}")
        except Exception as err:
            # A person's step that failed (a vendor refusing the story's own call): the deal stops here, the
            # others go on, and the table says what happened.
            deal.stuck = f"{type(err).__name__}: {err}"
            self._say(f"[deal {deal.number} {deal.entity}] FAILED: {deal.stuck}")
        finally:
            deal.seconds = time.monotonic() - started
            if deal.billing_workflow:
                self._billing_finished(deal.billing_workflow)

    async def _play(self, deal: Deal, deadline: float) -> None:
        tag = f"[deal {deal.number} {deal.entity}]"
        ids = await self._story.close_a_deal(deal.plan, deal.stamp)
        deal.account_name = f"{deal.plan.account_name} {deal.stamp}"
        deal.opportunity_id, deal.account_id = ids.opportunity_id, ids.account_id
        created = await self._runs.completed_result(
            o2p_id("salesforce", ids.opportunity_id), OpportunityToProjectResult, deadline
        )
        deal.project_id, deal.erp, deal.erp_customer_id = (
            created.project_id,
            created.erp,
            created.erp_customer_id,
        )
        self._say(f"{tag} project {created.project_id}, {created.erp} customer {created.erp_customer_id}")

        await self._story.log_and_approve_time(created.project_id, self._period, deal.days)
        deal.billing_workflow = ttb_id(created.project_id, self._period.value)
        self._billing_started(deal.billing_workflow)
        billed = await self._billed(deal, deadline)
        assert billed.invoice is not None and billed.invoice_to_cash_workflow_id is not None
        deal.invoice_id, deal.invoice_number = billed.invoice.invoice_id, billed.invoice.number
        deal.invoice_total, deal.entries_billed = billed.invoice.total, billed.time_entries_billed
        deal.cash_workflow = billed.invoice_to_cash_workflow_id
        self._billing_finished(deal.billing_workflow)
        self._say(f"{tag} invoice {billed.invoice.number} posted for {billed.invoice.total} (net)")

        await self._story.pay(created.erp, billed.invoice.invoice_id, deal.stamp)
        deal.payment_applied = True
        cash = await self._runs.completed_result(deal.cash_workflow, InvoiceToCashResult, deadline)
        deal.outcome = cash.outcome
        self._say(f"{tag} {cash.outcome}")

    async def _billed(self, deal: Deal, deadline: float) -> TimeToBillingResult:
        """Approve when the run asks (finance, through the ingress), then the posted invoice."""
        assert deal.billing_workflow is not None
        workflow_id = deal.billing_workflow
        while True:
            description = await self._runs.describe(workflow_id)
            if description is not None and description.status != WorkflowExecutionStatus.RUNNING:
                return await self._posted(workflow_id)
            if description is not None:
                status = await self._runs.query(
                    workflow_id, "status", deadline, result_type=TimeToBillingStatus
                )
                if status.stage in APPROVAL_STAGES and not deal.approved:
                    deal.approved = await self._approve(deal, deadline)
                elif status.stage in PARKED_STAGES:
                    raise RunStuck(f"{workflow_id} waits for a person at stage {status.stage}")
            if time.monotonic() > deadline:
                raise RunStuck(f"{workflow_id} posted no invoice in time")
            await asyncio.sleep(POLL_SECONDS)

    async def _posted(self, workflow_id: str) -> TimeToBillingResult:
        """The run under the id that posted (a later run may have found nothing left to bill)."""
        seen: list[str] = []
        for _ in range(VISIBILITY_ROUNDS):
            seen = []
            for run_id, status in await self._runs.run_ids(workflow_id):
                if status == WorkflowExecutionStatus.COMPLETED:
                    result = await self._runs.result(workflow_id, run_id, TimeToBillingResult)
                    if result.outcome == "posted":
                        return result
                    seen.append(f"run {run_id} {result.outcome}")
                else:
                    seen.append(f"run {run_id} {status.name.lower() if status else 'unknown'}")
            # The list comes from the visibility store, which may not have heard of the close yet.
            await asyncio.sleep(POLL_SECONDS)
        raise RunStuck(f"{workflow_id} closed without posting an invoice ({'; '.join(seen)})")

    async def _approve(self, deal: Deal, deadline: float) -> bool:
        assert deal.billing_workflow is not None and deal.project_id is not None
        pending = await self._runs.query(
            deal.billing_workflow, "pending_approval", deadline, result_type=PendingApproval
        )
        if pending is None:
            return False
        name, role = FINANCE
        token = mint_dev_token(self._settings, name, role, subject=f"{name}@northwind.example")
        url = f"/billing-runs/{deal.project_id}/{self._period.value}/approve"
        body = {"invoice_version": pending.version, "expected_total": pending.total.model_dump(mode="json")}
        async with httpx.AsyncClient(base_url=self._settings.ingress_public_url, timeout=30) as ingress:
            try:
                response = await ingress.post(url, json=body, headers={"Authorization": f"Bearer {token}"})
            except httpx.HTTPError:
                return False  # the ingress or Temporal is restarting: asked again on the next round
        if response.status_code == 200:
            self._say(f"[deal {deal.number} {deal.entity}] finance approved {pending.total}")
            return True
        # Decided already (an earlier approval went through although its answer did not come back).
        return response.status_code == 409 and bool(response.json().get("decided"))
