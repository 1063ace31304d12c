"""MonthEndClose on real Temporal, real sandboxes and the ledger: the journals each contract kind posts
to Xero (and Tryton), their amounts against an oracle written here with fractions, WIP accrued and reversed
on the next period's first day, a re-run that posts nothing, then only an adjustment, and a locked period
that is a finance exception in Xero's words.

The sandboxes live for the whole session, so each test closes a period of its own: a journal's reference is
unique per entity, period and kind in the ERP, as in production.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from canonical import Money, Period
from canonical.journals import BookedJournal
from connectors.roles import ErpJournals
from devstack.story import (
    EU_DEAL,
    LATE_MINUTES,
    MONTH_END_ACCOUNTS,
    TEAM,
    UK_DEAL,
    previous_period,
    working_days,
)
from devstack.tryton import TrytonServer
from domain.account_mapping import AccountRule
from ingress.exceptions_api import request_retry
from ingress.identity import mint_dev_token
from ledger.account_mapping import set_account_mapping
from ledger.month_end import set_percentage_of_completion
from ledger.repository import get_contract, list_exceptions
from runs.exception_action import ExceptionActionResult
from runs.month_end_close import MonthEndCloseInput, workflow_id
from sandboxes.kantata.seed import TimeLog
from sandboxes.xero.control import XeroSandboxControl
from sandboxes.xero.lock_dates import LockDateSettings
from workflows.month_end_close import MonthEndClose, MonthEndCloseResult

from ..support.system import Sandboxes, System, running_system
from ..support.temporal import target_of
from .billing_steps import deal_for, kantata, log_approved, staff
from .conftest import prepared_story
from .test_reconciliation import billed_project

FINANCE = "Fiona Finance <fiona@northwind.example>"
COST_GBP = "61.37"
COST_EUR = "58.19"


def map_month_end(system: System, legal_entity: str) -> None:
    with system.database.session() as session:
        for entity, role, account in MONTH_END_ACCOUNTS:
            if entity == legal_entity:
                set_account_mapping(
                    session,
                    legal_entity=entity,
                    rule=AccountRule(kind="journal", key=role, account_code=account),
                    actor=FINANCE,
                )


async def costed_consultant(system: System, project_id: str, role: str, cost: Money) -> str:
    person = await staff(system, project_id, role)
    async with kantata(system) as seeder:
        await seeder.cost_rate(person.user_id, cost)
    return person.user_id


async def close(system: System, entity: str, period: Period) -> MonthEndCloseResult:
    result: MonthEndCloseResult = await system.client.execute_workflow(
        MonthEndClose.run,
        MonthEndCloseInput(legal_entity=entity, period=period.value, psa=system.settings.psa),
        id=f"{workflow_id(entity, period.value)}:test-{uuid.uuid4().hex[:8]}",
        task_queue=system.task_queue,
    )
    return result


async def booked(system: System, entity: str, reference: str) -> BookedJournal:
    erp, _ = system.connectors.erps.for_entity(entity)
    assert isinstance(erp, ErpJournals)
    found = await erp.find_journal(reference)
    assert found is not None, f"{reference} is not in the ERP"
    return await erp.get_journal(found.journal_id)


def by_account(journal: BookedJournal, *, project_code: str | None = None) -> dict[str, Decimal]:
    """The journal's amounts by account; `project_code`: only the lines booked to that project."""
    totals: dict[str, Decimal] = {}
    for line in journal.lines:
        if project_code is not None and not any(
            v.dimension == "project" and v.code == project_code for v in line.dimensions
        ):
            continue
        totals[line.account_code] = totals.get(line.account_code, Decimal(0)) + line.amount.amount
    return totals


async def kantata_figures(system: System, project_id: str) -> dict[str, object]:
    """Month-end's Workspace custom fields on the project, as Kantata lists their values."""
    async with kantata(system) as seeder:
        values = await seeder.every(
            "/custom_field_values", {"subject_type": "Workspace", "with_subject_id": project_id}
        )
    names = ("Recognised Revenue", "Labour Cost", "WIP", "Margin")
    return {v["custom_field_name"]: v["value"] for v in values if v.get("custom_field_name") in names}


def has_project_dimension(journal: BookedJournal) -> bool:
    return all(any(v.dimension == "project" for v in line.dimensions) for line in journal.lines)


# --- the oracle: fractions, rounded the way the ERP rounds, written apart from domain.month_end ---


def rounded(value: Fraction, places: int, *, half_even: bool = False) -> Fraction:
    scale = 10**places
    scaled = value * scale
    whole = scaled.numerator // scaled.denominator
    rest = scaled - whole
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and (not half_even or whole % 2 == 1)):
        whole += 1
    return Fraction(whole, scale)


def money(value: Fraction) -> Decimal:
    cents = rounded(value, 2)
    return Decimal(cents.numerator) / Decimal(cents.denominator)


def wip_oracle(minutes: int, rate: str, quantity_places: int, *, half_even: bool = False) -> Decimal:
    hours = rounded(Fraction(minutes, 60), quantity_places, half_even=half_even)
    return money(rounded(hours * Fraction(rate), 2, half_even=half_even))


def cost_oracle(minutes: int, hourly: str) -> Decimal:
    return money(Fraction(minutes) * Fraction(hourly) / 60)


# --- tests ---


async def test_time_and_materials_accrues_wip_reverses_it_costs_labour_and_a_rerun_posts_only_the_difference(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    map_month_end(system, "UK")
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = Period(value="2026-10")
    person = await costed_consultant(system, project, "Consultant", Money.of(COST_GBP, "GBP"))
    days = working_days(period, 2)
    await log_approved(system, project, [TimeLog(person, days[0], 480), TimeLog(person, days[1], 445)])

    result = await close(system, "UK", period)

    posted = {p.reference: p for p in result.postings}
    assert set(posted) == {"WIP-UK-2026-10", "WIP-UK-2026-10-REV", "LABOUR-UK-2026-10"}
    assert all(p.outcome == "posted" for p in posted.values())
    wip = wip_oracle(925, "100", quantity_places=4)
    cost = cost_oracle(925, COST_GBP)
    accrual = await booked(system, "UK", "WIP-UK-2026-10")
    assert accrual.journal.date == date(2026, 10, 31)
    assert by_account(accrual) == {"630": wip, "200": -wip}
    reversal = await booked(system, "UK", "WIP-UK-2026-10-REV")
    assert reversal.journal.date == date(2026, 11, 1)
    assert by_account(reversal) == {"630": -wip, "200": wip}
    labour = await booked(system, "UK", "LABOUR-UK-2026-10")
    assert by_account(labour) == {"320": cost, "840": -cost}
    for journal in (accrual, reversal, labour):
        assert has_project_dimension(journal)
        # Each line names the time entries it was computed from.
        assert all("time:" in line.description for line in journal.lines)
    (margin,) = result.margins
    assert margin.wip.amount == wip and margin.labour_cost.amount == cost
    # The PSA's project shows the figures to date (Kantata's currency fields: minor units and currency).
    cents = {name: int(amount * 100) for name, amount in (("wip", wip), ("cost", cost))}
    assert await kantata_figures(system, project) == {
        "Recognised Revenue": [cents["wip"], "GBP"],
        "Labour Cost": [cents["cost"], "GBP"],
        "WIP": [cents["wip"], "GBP"],
        "Margin": [cents["wip"] - cents["cost"], "GBP"],
    }

    again = await close(system, "UK", period)
    assert again.postings == ()

    # An hour approved late for October: the re-run posts only its difference, as adjustments.
    await log_approved(system, project, [TimeLog(person, days[1], 60)])
    adjusted = await close(system, "UK", period)

    assert {p.reference for p in adjusted.postings} == {
        "WIP-UK-2026-10-ADJ1",
        "WIP-UK-2026-10-REV-ADJ1",
        "LABOUR-UK-2026-10-ADJ1",
    }
    more_wip = wip_oracle(985, "100", quantity_places=4) - wip
    more_cost = cost_oracle(985, COST_GBP) - cost
    assert by_account(await booked(system, "UK", "WIP-UK-2026-10-ADJ1")) == {
        "630": more_wip,
        "200": -more_wip,
    }
    assert by_account(await booked(system, "UK", "LABOUR-UK-2026-10-ADJ1")) == {
        "320": more_cost,
        "840": -more_cost,
    }


async def test_fixed_fees_by_milestone_and_by_completion_and_a_retainer_recognise_revenue_against_accruals(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    map_month_end(system, "UK")
    # Milestones complete today, retainers start the month their contract is captured: a period ahead.
    period = Period(value="2027-03")
    by_milestone = (await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))).project_id
    by_hours = (await deal_for(system, service_code="IMP-FF", amount=Decimal("10000"))).project_id
    retainer = (await deal_for(system, service_code="MS-RET", amount=Decimal("36000"))).project_id
    with system.database.session() as session:
        set_percentage_of_completion(
            session, psa="kantata", project_id=by_hours, budget_hours=Decimal("37.5"), actor=FINANCE
        )
    async with kantata(system) as seeder:
        await seeder.complete_milestone(by_milestone, "Design sign-off")
    today = datetime.now(UTC).date()
    person = await costed_consultant(system, by_hours, "Consultant", Money.of(COST_GBP, "GBP"))
    await log_approved(system, by_hours, [TimeLog(person, today, 445)])

    result = await close(system, "UK", period)

    posted = {p.reference: p for p in result.postings}
    assert {"REVREC-UK-2027-03", "LABOUR-UK-2027-03"} <= set(posted)
    assert posted["REVREC-UK-2027-03"].outcome == "posted"
    recognition = await booked(system, "UK", "REVREC-UK-2027-03")
    assert recognition.journal.date == date(2027, 3, 31) and has_project_dimension(recognition)
    by_hours_revenue = money(Fraction(10000) * Fraction(445, 60) / Fraction("37.5"))
    # Retainer: December to March, four whole months of 3,000.00; nothing invoiced, so all accrued.
    retainer_revenue = Decimal("12000.00")
    expected = Decimal("4000.00") + by_hours_revenue + retainer_revenue
    assert by_account(recognition) == {"615": expected, "200": -expected}
    margins = {m.project_id: m for m in result.margins}
    assert margins[by_milestone].revenue.amount == Decimal("4000.00")
    assert margins[by_hours].revenue.amount == by_hours_revenue
    assert margins[retainer].revenue.amount == retainer_revenue
    labour = await booked(system, "UK", "LABOUR-UK-2027-03")
    assert by_account(labour) == {"320": cost_oracle(445, COST_GBP), "840": -cost_oracle(445, COST_GBP)}


async def test_a_locked_period_in_xero_is_a_finance_exception_in_xeros_words_and_posts_no_journal(
    ts_env: WorkflowEnvironment, ts_system: System, sandboxes: Sandboxes
) -> None:
    system = ts_system
    map_month_end(system, "UK")
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = Period(value="2026-09")
    person = await costed_consultant(system, project, "Consultant", Money.of(COST_GBP, "GBP"))
    await log_approved(system, project, [TimeLog(person, working_days(period, 1)[0], 480)])
    control = XeroSandboxControl(sandboxes.xero.url)
    await control.set_lock_dates(LockDateSettings(period_lock_date=period.last_day))
    try:
        result = await close(system, "UK", period)
    finally:
        await control.set_lock_dates(LockDateSettings())
        await control.aclose()

    outcomes = {p.reference: p.outcome for p in result.postings}
    assert outcomes == {"WIP-UK-2026-09": "rejected", "LABOUR-UK-2026-09": "rejected"}
    erp, _ = system.connectors.erps.for_entity("UK")
    assert isinstance(erp, ErpJournals)
    assert await erp.booked_journals("WIP-UK-2026-09") == []
    with system.database.session() as session:
        raised = list_exceptions(session, process="month_end")
    assert {item.owner for item in raised} == {"finance"} and len(raised) == 2
    assert all("lock date" in item.reason.lower() for item in raised)

    # Reopened: finance retries one of them; the close runs again, posts what was refused, accrual and
    # reversal together, and resolves both.
    started = await request_retry(
        system.database,
        system.client,
        system.settings,
        exception_id=raised[0].id,
        actor="finance.lead",
        note="lock date moved",
    )
    outcome = await system.client.get_workflow_handle(
        started.workflow_id, result_type=ExceptionActionResult
    ).result()
    assert outcome.retried_workflow_id == workflow_id("UK", period.value)
    again = await system.client.get_workflow_handle(
        outcome.retried_workflow_id, result_type=MonthEndCloseResult
    ).result()
    assert {p.reference for p in again.postings if p.outcome == "posted"} == {
        "WIP-UK-2026-09",
        "WIP-UK-2026-09-REV",
        "LABOUR-UK-2026-09",
    }
    assert len(again.resolved_exceptions) == 2


@pytest.fixture
async def tryton_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


async def test_the_eu_entity_posts_wip_and_labour_cost_to_tryton_as_account_moves(
    tryton_system: System,
) -> None:
    system = tryton_system
    map_month_end(system, "EU")
    project = (
        await deal_for(system, service_code="DIG-TM", amount=Decimal("40000"), plan=EU_DEAL)
    ).project_id
    period = Period.of(datetime.now(UTC).date())
    person = await costed_consultant(system, project, "Consultant", Money.of(COST_EUR, "EUR"))
    await log_approved(system, project, [TimeLog(person, period.first_day, 445)])

    result = await close(system, "EU", period)

    assert {p.reference: p.outcome for p in result.postings} == {
        f"WIP-EU-{period.value}": "posted",
        f"WIP-EU-{period.value}-REV": "posted",
        f"LABOUR-EU-{period.value}": "posted",
    }
    wip = wip_oracle(445, "115.50", quantity_places=2, half_even=True)
    cost = cost_oracle(445, COST_EUR)
    accrual = await booked(system, "EU", f"WIP-EU-{period.value}")
    assert by_account(accrual) == {"1.3.3": wip, "4.1.2": -wip} and has_project_dimension(accrual)
    labour = await booked(system, "EU", f"LABOUR-EU-{period.value}")
    assert by_account(labour) == {"5.2.1": cost, "2.2.1": -cost} and has_project_dimension(labour)


@pytest.fixture
async def system_with_ingress(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes
) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env)
    ) as system:
        yield system


async def test_finance_starts_a_close_through_the_ingress_and_other_roles_may_not(
    system_with_ingress: System,
) -> None:
    system = system_with_ingress
    assert system.ingress is not None
    map_month_end(system, "UK")
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = Period(value="2026-08")
    person = await costed_consultant(system, project, "Consultant", Money.of(COST_GBP, "GBP"))
    await log_approved(system, project, [TimeLog(person, working_days(period, 1)[0], 90)])

    def as_role(name: str, role: str) -> httpx.AsyncClient:
        token = mint_dev_token(system.settings, name, role)
        return httpx.AsyncClient(
            base_url=system.ingress.url,  # type: ignore[union-attr]
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )

    async with as_role("sales.ops", "ops") as ops:
        assert (await ops.post("/month-end/UK/2026-08")).status_code == 403
    async with as_role("finance.lead", "finance") as finance:
        assert (await finance.post("/month-end/UK/2026-13")).status_code == 422
        assert (await finance.post("/month-end/XX/2026-08")).status_code == 404
        accepted = await finance.post("/month-end/UK/2026-08")
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["workflow_id"] == workflow_id("UK", "2026-08")
    handle = system.client.get_workflow_handle(workflow_id("UK", "2026-08"), result_type=MonthEndCloseResult)
    result = await handle.result()
    cost = cost_oracle(90, COST_GBP)
    assert {p.reference for p in result.postings} == {
        "WIP-UK-2026-08",
        "WIP-UK-2026-08-REV",
        "LABOUR-UK-2026-08",
    }
    assert by_account(await booked(system, "UK", "LABOUR-UK-2026-08")) == {"320": cost, "840": -cost}


async def test_the_demo_story_closes_the_billed_month_with_the_late_day_as_wip_and_labour_cost(
    system_with_ingress: System,
) -> None:
    system = system_with_ingress
    story = await prepared_story(system)
    period = previous_period(datetime.now(UTC).date())
    project, _ = await billed_project(system, story, period)

    (printed,) = await story.play_month_end([(UK_DEAL, project)])

    # The rates Kantata stamped on each entry when it was logged: other tests sharing this sandbox may have
    # dated later rate cards or cost rates for the same team, and an entry keeps what was in force.
    async with kantata(system) as seeder:
        entries = await seeder.every("/time_entries", {"workspace_id": project})
    late = [e for e in entries if e["notes"] == "late"]
    assert len(late) == len(TEAM) and all(e["time_in_minutes"] == LATE_MINUTES for e in late)
    assert len(entries) == len(TEAM) * 3 and all(e["cost_rate_in_cents"] is not None for e in entries)
    wip = sum(
        (wip_oracle(LATE_MINUTES, str(Fraction(e["rate_in_cents"], 100)), quantity_places=4) for e in late),
        Decimal(0),
    )
    # The team's cost rates are set before any time is logged: the two billed days and the late day all
    # carry them; the period's labour cost is summed exactly and rounded once.
    cost = money(
        sum(
            (Fraction(e["time_in_minutes"]) * Fraction(e["cost_rate_in_cents"], 100) / 60 for e in entries),
            Fraction(0),
        )
    )
    # The close covers every UK project of the ledger, and deals other tests closed in this Salesforce
    # sandbox may have become projects here too: only this project's lines are compared.
    with system.database.session() as session:
        contract = get_contract(session, psa="kantata", project_id=project)
    assert contract is not None and contract.erp_project is not None
    code = next(v.code for v in contract.erp_project.dimensions if v.dimension == "project")
    assert f"WIP-UK-{period.value}" in printed and f"LABOUR-UK-{period.value}" in printed
    accrual = await booked(system, "UK", f"WIP-UK-{period.value}")
    assert by_account(accrual, project_code=code) == {"630": wip, "200": -wip}
    labour = await booked(system, "UK", f"LABOUR-UK-{period.value}")
    assert by_account(labour, project_code=code) == {"320": cost, "840": -cost}
    assert f"of project {project} have no cost rate" not in printed
