"""Puts the generated firm into the vendors through their public APIs, as the firm's people would.

Consultants and rate cards go to Kantata; deals (account, bill-to contact, opportunity) go to Salesforce
through sObject Collections, 200 records a call; time entries, expenses and team memberships go to Kantata
in its bulk creates, 100 a request; timesheets are submitted and approved one person and project at a time,
as a manager would. Nothing here talks to ps-sync.
"""

from __future__ import annotations

import asyncio
import functools
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from bench.firm import RATE_CARD_SETS, DealPlan, Firm, WorkPlan
from canonical import Money
from config import Settings
from connectors.kantata.mapping import subunits
from sandboxes.kantata.seed import BULK, KantataSeeder
from sandboxes.salesforce.seed import SalesforceSeeder

T = TypeVar("T")
# Parallel requests while seeding: enough to keep a sandbox busy, few enough not to starve it.
SEED_PARALLEL = 6


async def bounded(jobs: Sequence[Callable[[], Awaitable[T]]], parallel: int) -> list[T]:
    gate = asyncio.Semaphore(parallel)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(job) for job in jobs)))


@dataclass(frozen=True)
class StaffMember:
    user_id: str
    role_id: str


@dataclass
class Staff:
    """Kantata ids of the firm's consultants, by the generator's index."""

    members: dict[int, StaffMember]


@dataclass(frozen=True)
class DealRecord:
    deal: DealPlan
    account_id: str
    contact_id: str
    opportunity_id: str


@dataclass
class LoggedWork:
    """What was logged for one month, waiting for approval: time entry ids per (project, person)."""

    plan: WorkPlan
    timesheets: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    expenses: int = 0


def kantata(settings: Settings) -> KantataSeeder:
    return KantataSeeder(
        base_url=settings.kantata_base_url,
        client_id=settings.kantata_client_id,
        client_secret=settings.kantata_client_secret.get_secret_value(),
    )


def salesforce(settings: Settings) -> SalesforceSeeder:
    return SalesforceSeeder(
        settings.salesforce_base_url,
        client_id=settings.salesforce_client_id,
        client_secret=settings.salesforce_client_secret.get_secret_value(),
        api_version=settings.salesforce_api_version,
    )


async def prepare_reference(settings: Settings, firm: Firm) -> Staff:
    """People with roles and the dated rate cards: what the firm has before any deal."""
    async with kantata(settings) as seeder:
        for role in sorted({c.role for c in firm.consultants}):
            await seeder.role(role)
        people = [await seeder.consultant(c.full_name, c.email, c.role) for c in firm.consultants]
        for set_title in RATE_CARD_SETS:
            for currency, versions in firm.rate_cards().items():
                await seeder.rate_card(currency, versions, set_title=set_title)
    return Staff(
        members={
            plan.index: StaffMember(user_id=person.user_id, role_id=person.role_id)
            for plan, person in zip(firm.consultants, people, strict=True)
        }
    )


async def create_deals(settings: Settings, firm: Firm, deals: Sequence[DealPlan]) -> list[DealRecord]:
    """Accounts, bill-to contacts and open opportunities, in bulk; closing them is the workload."""
    close_date = firm.first_period.first_day - timedelta(days=30)
    async with salesforce(settings) as seeder:
        account_ids = await seeder.create_records(
            "Account",
            [
                {
                    "Name": deal.account_name,
                    "BillingStreet": deal.street,
                    "BillingCity": deal.city,
                    "BillingPostalCode": deal.postal_code,
                    "BillingCountryCode": deal.country,
                }
                for deal in deals
            ],
        )
        contact_ids = await seeder.create_records(
            "Contact",
            [
                {
                    "FirstName": "Alex",
                    "LastName": f"Morgan {deal.index:05d}",
                    "Email": f"accounts.{deal.index:05d}@customer.example",
                    "AccountId": account_id,
                }
                for deal, account_id in zip(deals, account_ids, strict=True)
            ],
        )
        opportunity_ids = await seeder.create_records(
            "Opportunity",
            [
                {
                    "Name": f"{deal.account_name} {deal.service_code}",
                    "StageName": "Negotiation/Review",
                    "CloseDate": close_date.isoformat(),
                    "Amount": deal.amount,
                    "CurrencyIsoCode": deal.currency,
                    "Legal_Entity__c": deal.entity,
                    "Billing_Model__c": deal.billing_model,
                    "Service_Code__c": deal.service_code,
                    "Tax_Code__c": deal.tax_code,
                    "Project_Manager__c": deal.project_manager,
                    "AccountId": account_id,
                    "Bill_To_Contact__c": contact_id,
                }
                for deal, account_id, contact_id in zip(deals, account_ids, contact_ids, strict=True)
            ],
        )
    return [
        DealRecord(deal=deal, account_id=a, contact_id=c, opportunity_id=o)
        for deal, a, c, o in zip(deals, account_ids, contact_ids, opportunity_ids, strict=True)
    ]


async def staff_projects(
    settings: Settings, firm: Firm, staff: Staff, deals: Sequence[DealPlan], projects: Mapping[int, str]
) -> None:
    """Each deal's team joins its project with their role, so their time is rated by that role."""
    rows = [
        {
            "workspace_id": int(projects[deal.index]),
            "user_id": int(staff.members[member].user_id),
            "role": "maven",
            "role_id": int(staff.members[member].role_id),
        }
        for deal in deals
        if deal.index in projects
        for member in deal.team
    ]
    async with kantata(settings) as seeder:
        await bounded(
            [
                lambda chunk=rows[start : start + BULK]: seeder.call(  # type: ignore[misc]
                    "POST", "/participations", body={"participations": chunk}
                )
                for start in range(0, len(rows), BULK)
            ],
            SEED_PARALLEL,
        )


async def log_work(
    settings: Settings, staff: Staff, projects: Mapping[int, str], plan: WorkPlan
) -> LoggedWork:
    """Time and expenses for the month, logged but not yet approved (expenses need no approval)."""
    logged = LoggedWork(plan=plan)
    time_rows = [
        (
            (projects[item.deal], staff.members[item.consultant].user_id),
            {
                "workspace_id": int(projects[item.deal]),
                "user_id": int(staff.members[item.consultant].user_id),
                "date_performed": item.day.isoformat(),
                "time_in_minutes": item.minutes,
                "billable": item.billable,
                "notes": item.notes,
            },
        )
        for item in plan.time
    ]
    async with kantata(settings) as seeder:
        categories = {c["name"]: int(c["id"]) for c in await seeder.every("/expense_categories")}

        async def send_time(batch: list[tuple[tuple[str, str], dict[str, Any]]]) -> None:
            body = await seeder.call(
                "POST", "/time_entries", body={"time_entries": [row for _, row in batch]}
            )
            for (key, _), ref in zip(batch, body["results"], strict=True):
                logged.timesheets.setdefault(key, []).append(str(ref["id"]))

        expense_rows = [
            {
                "workspace_id": int(projects[item.deal]),
                "user_id": int(staff.members[item.consultant].user_id),
                "date": item.day.isoformat(),
                "expense_category_id": categories[item.category],
                "category": item.category,
                "amount_in_cents": subunits(Money.of(item.amount, item.currency)),
                "billable": True,
            }
            for item in plan.expenses
        ]
        jobs: list[Callable[[], Awaitable[Any]]] = [
            lambda batch=time_rows[start : start + BULK]: send_time(batch)  # type: ignore[misc]
            for start in range(0, len(time_rows), BULK)
        ]
        jobs += [
            lambda batch=expense_rows[start : start + BULK]: seeder.call(  # type: ignore[misc]
                "POST", "/expenses", body={"expenses": batch}
            )
            for start in range(0, len(expense_rows), BULK)
        ]
        await bounded(jobs, SEED_PARALLEL)
    logged.expenses = len(plan.expenses)
    return logged


async def approve_work(settings: Settings, logged: LoggedWork, *, per_timesheet: int = 500) -> int:
    """Each person's timesheet per project, submitted and approved. Returns the number of timesheets."""
    async with kantata(settings) as seeder:

        async def approve(workspace_id: str, user_id: str, ids: list[str], part: int) -> None:
            submission = await seeder.submit_timesheet(
                workspace_id, ids, f"{logged.plan.period} timesheet {user_id}/{part}"
            )
            await seeder.approve_timesheet(submission, note="Approved for month-end billing")

        batches = [
            (workspace_id, user_id, ids[start : start + per_timesheet], start // per_timesheet)
            for (workspace_id, user_id), ids in sorted(logged.timesheets.items())
            for start in range(0, len(ids), per_timesheet)
        ]
        jobs = [functools.partial(approve, *batch) for batch in batches]
        await bounded(jobs, SEED_PARALLEL)
    return len(jobs)


async def complete_milestones(settings: Settings, projects: Mapping[int, str], deals: Sequence[int]) -> int:
    """The project manager signs off the first open milestone of each of these fixed-fee projects."""
    targets = [projects[index] for index in deals if index in projects]
    async with kantata(settings) as seeder:

        async def complete(workspace_id: str) -> None:
            stories = await seeder.every("/stories", {"workspace_id": workspace_id})
            pending = [
                s for s in stories if s.get("story_type") == "milestone" and s.get("state") != "completed"
            ]
            if pending:
                first = min(pending, key=lambda story: int(story["id"]))
                await seeder.call("PUT", f"/stories/{first['id']}", body={"story": {"state": "completed"}})

        await bounded([lambda w=w: complete(w) for w in targets], SEED_PARALLEL)  # type: ignore[misc]
    return len(targets)


async def unbilled(settings: Settings, projects: Sequence[str], period: str) -> dict[str, int]:
    """Approved, billable, not yet invoiced time entries and expenses in the month on these projects:
    the check that billing finished (zero) and the count a run starts from."""
    from canonical import Period

    month = Period(value=period)
    counts: dict[str, int] = defaultdict(int)
    async with kantata(settings) as seeder:
        for start in range(0, len(projects), 100):
            ids = ",".join(projects[start : start + 100])
            time = await seeder.call(
                "GET",
                "/time_entries",
                params={
                    "workspace_ids": ids,
                    "approved": "true",
                    "billable": "true",
                    "uninvoiced": "true",
                    "date_performed_between": f"{month.first_day}:{month.last_day}",
                    "per_page": 1,
                },
            )
            counts["time_entries"] += int(time["count"])
            expenses = await seeder.call(
                "GET",
                "/expenses",
                params={
                    "workspace_ids": ids,
                    "approved": "true",
                    "uninvoiced": "true",
                    "date_expensed_between": f"{month.first_day}:{month.last_day}",
                    "per_page": 1,
                },
            )
            counts["expenses"] += int(expenses["count"])
    return dict(counts)
