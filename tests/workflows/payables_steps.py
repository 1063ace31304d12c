"""Steps the payables tests and the replay recording share: finance's UK mapping, a consultant's reimbursable
expense, a subcontractor's approved time, what the PSA and Xero then hold."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from canonical import Money, Period
from canonical.payables import PayableExpense, SubcontractedTime
from connectors.kantata import KantataConnector
from connectors.xero import XeroConnector
from devstack.story import ACCOUNT_MAPPING
from domain.account_mapping import AccountRule
from ledger.account_mapping import set_account_mapping
from sandboxes.kantata.seed import KantataSeeder, TimeLog

from ..support.system import System
from .helpers import stamp


def map_accounts(system: System, legal_entity: str = "UK") -> None:
    """The demo firm's mapping for the entity, expense categories' cost accounts included."""
    with system.database.session() as session:
        for entity, kind, key, account, cost in ACCOUNT_MAPPING:
            if entity == legal_entity:
                set_account_mapping(
                    session,
                    legal_entity=entity,
                    rule=AccountRule(kind=kind, key=key, account_code=account, cost_account_code=cost),  # type: ignore[arg-type]
                    actor="Fiona Finance <fiona@northwind.example>",
                )


async def reimbursable_expense(
    system: System, project_id: str, amount: str, currency: str = "GBP"
) -> tuple[str, str, Period]:
    """A new consultant logs an approved reimbursable taxi fare on the project: (user id, expense id)."""
    day = datetime.now(UTC).date()
    suffix = stamp()
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        person = await kantata.consultant(
            f"Ravi Patel {suffix}", f"ravi.{suffix}@northwind.example", "Consultant"
        )
        await kantata.add_to_project(project_id, [person])
        expense_id = await kantata.log_expense(
            project_id,
            day=day,
            amount=Money.of(amount, currency),
            category="Travel",
            user_id=person.user_id,
            reimbursable=True,
            billable=False,
            notes="Taxi to client site",
        )
    return person.user_id, expense_id, Period.of(day)


async def payable(system: System, period: Period, expense_id: str) -> PayableExpense:
    psa = system.connectors.psa
    assert isinstance(psa, KantataConnector)
    async for page in psa.payable_expenses(period):
        for expense in page.items:
            if expense.id == expense_id:
                return expense
    raise AssertionError(f"expense {expense_id} is not payable")


async def bills_numbered(system: System, number: str) -> list[dict[str, Any]]:
    xero = system.connectors.erps.by_system("xero")
    assert isinstance(xero, XeroConnector)
    where = f'Type=="ACCPAY" AND InvoiceNumber=="{number}"'
    found: list[dict[str, Any]] = []
    async for page in xero.client.pages("/Invoices", "Invoices", params={"where": where}):
        found.extend(page.items)
    return found


async def subcontractor(
    system: System, project_id: str, firm: str, cost_rate: Money | None, name: str = "Sam Contractor"
) -> str:
    """A member of `firm` (User field `Supplier`) on the project, at `cost_rate` an hour; their user id."""
    suffix = stamp()
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        email = f"sub.{suffix}@contractors.example"
        person = await kantata.consultant(f"{name} {suffix}", email, "Consultant")
        await kantata.works_for(person.user_id, firm)
        if cost_rate is not None:
            await kantata.cost_rate(person.user_id, cost_rate)
        await kantata.add_to_project(project_id, [person])
    return person.user_id


async def approved_time(system: System, project_id: str, user_id: str, *minutes: int) -> list[str]:
    """The member logs the minutes today, one entry each, and a manager approves them; the entries' ids."""
    day = datetime.now(UTC).date()
    async with KantataSeeder.for_sandbox(system.settings.kantata_base_url) as kantata:
        logs = [TimeLog(user_id=user_id, day=day, minutes=m) for m in minutes]
        ids = await kantata.log_time(project_id, logs)
        await kantata.submit_and_approve(project_id, ids)
    return ids


async def subcontracted(system: System, period: Period, entry_id: str) -> SubcontractedTime:
    psa = system.connectors.psa
    assert isinstance(psa, KantataConnector)
    async for page in psa.subcontracted_time(period):
        for entry in page.items:
            if entry.id == entry_id:
                return entry
    raise AssertionError(f"time entry {entry_id} is not subcontracted time")
