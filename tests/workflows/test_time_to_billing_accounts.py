"""Invoice lines book to finance's mapped accounts, on real Temporal, Kantata and Xero sandboxes and ledger:
an unmapped role is a finance exception naming the rule while the rest of the invoice posts, and once
finance maps it the next run bills that work on the mapped account."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from connectors.tryton.connector import TrytonConnector
from devstack.story import EU_DEAL, previous_period, working_days
from devstack.tryton import TrytonServer
from domain.account_mapping import NOT_IN_ERP, UNMAPPED, AccountRule
from ledger.account_mapping import set_account_mapping
from ledger.records import AccountRecord
from ledger.repository import find_external_id, upsert_accounts
from runs.time_to_billing import TimeToBillingResult
from sandboxes.kantata.seed import TimeLog
from sandboxes.xero.seed import XeroFinanceUser

from ..support.system import Sandboxes, System, running_system
from .billing_steps import (
    approve_when_asked,
    begin_billing,
    contract_of,
    deal_for,
    exceptions,
    gbp,
    log_approved,
    staff,
    unbilled_time,
)

ONE_DAY = 480


def map_account(system: System, kind: str, key: str, account: str) -> None:
    with system.database.session() as session:
        set_account_mapping(
            session,
            legal_entity="UK",
            rule=AccountRule(kind=kind, key=key, account_code=account),  # type: ignore[arg-type]
            actor="Fiona Finance <fiona@northwind.example>",
        )


async def test_lines_book_to_mapped_accounts_and_an_unmapped_role_waits_for_finance(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    day = working_days(period, 1)[0]
    senior = await staff(system, project, "Senior Consultant")
    consultant = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(senior.user_id, day, ONE_DAY)])
    (unmapped,) = await log_approved(system, project, [TimeLog(consultant.user_id, day, ONE_DAY)])
    # Only the senior role has an account: the consultant's time has nowhere to book.
    map_account(system, "role", "Senior Consultant", "260")

    first = await begin_billing(system, project, period=period)
    await approve_when_asked(first)
    posted: TimeToBillingResult = await first.result()

    assert posted.outcome == "posted" and posted.invoice is not None
    assert posted.invoice.total == gbp("1200.00") and posted.rejected_items == 1
    invoice = await xero_invoice(system, posted)
    assert [(line["Description"], line["AccountCode"]) for line in invoice["LineItems"]] == [
        ("Professional services: Senior Consultant", "260")
    ]
    # The project's dimensions, made when the deal was won, are on the line as Xero tracking.
    contract = contract_of(system, project)
    assert contract.erp_project is not None
    tracked = {(t["Name"], t["Option"]) for t in invoice["LineItems"][0]["Tracking"]}
    assert tracked == {
        ("Project", next(v.code for v in contract.erp_project.dimensions if v.dimension == "project")),
        ("Customer", next(v.code for v in contract.erp_project.dimensions if v.dimension == "customer")),
    }
    assert next(iter(tracked - {t for t in tracked if t[0] == "Customer"}))[1].startswith(f"{project} ")
    (raised,) = exceptions(system, owner="finance")
    assert raised.record["rule"] == UNMAPPED and raised.record["ids"] == [unmapped]
    assert "pssync accounts set UK role Consultant --account CODE" in raised.reason
    assert await unbilled_time(system, project, period) == [unmapped]

    # Finance maps the service; what the retry starts is the next run for the period.
    map_account(system, "service", "ADV-TM", "200")
    second = await begin_billing(system, project, period=period)
    adjusted: TimeToBillingResult = await second.result()

    assert adjusted.outcome == "posted" and adjusted.adjustment and adjusted.invoice is not None
    assert adjusted.invoice.total == gbp("800.00")
    later = await xero_invoice(system, adjusted)
    assert [line["AccountCode"] for line in later["LineItems"]] == ["200"]
    assert await unbilled_time(system, project, period) == []


async def test_an_account_archived_in_the_erp_stops_its_lines_with_the_rule_to_fix(
    ts_env: WorkflowEnvironment, ts_system: System
) -> None:
    system = ts_system
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = previous_period(datetime.now(UTC).date())
    day = working_days(period, 1)[0]
    senior = await staff(system, project, "Senior Consultant")
    consultant = await staff(system, project, "Consultant")
    (archived,) = await log_approved(system, project, [TimeLog(senior.user_id, day, ONE_DAY)])
    await log_approved(system, project, [TimeLog(consultant.user_id, day, ONE_DAY)])
    map_account(system, "role", "Senior Consultant", "261")
    map_account(system, "service", "*", "200")
    # As ReferenceSync last read Xero's chart: 261 archived since the rule was set.
    with system.database.session() as session:
        upsert_accounts(
            session,
            system="xero",
            accounts=[
                AccountRecord(system="xero", code="200", name="Sales", type="REVENUE"),
                AccountRecord(system="xero", code="261", name="Old fees", type="REVENUE", active=False),
            ],
        )

    handle = await begin_billing(system, project, period=period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None
    assert result.invoice.total == gbp("800.00")
    (raised,) = exceptions(system, owner="finance")
    assert raised.record["rule"] == NOT_IN_ERP and raised.record["ids"] == [archived]
    assert "'261' mapped by rule UK role 'Senior Consultant' is archived in xero" in raised.reason


async def xero_invoice(system: System, result: TimeToBillingResult) -> dict[str, Any]:
    assert result.invoice is not None
    finance = XeroFinanceUser.from_settings(system.settings)
    try:
        invoice: dict[str, Any] = await finance.get_invoice(result.invoice.invoice_id)
        return invoice
    finally:
        await finance.aclose()


@pytest.fixture
async def eu_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    # The dev server: Tryton refuses invoices dated in the future, and the time-skipping server's clock runs
    # ahead of the real one once other tests have skipped time.
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


async def test_eu_lines_book_to_the_mapped_tryton_account_with_project_and_customer_analytics(
    eu_system: System,
) -> None:
    system = eu_system
    won = await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"), plan=EU_DEAL)
    project = won.project_id
    with system.database.session() as session:
        set_account_mapping(
            session,
            legal_entity="EU",
            rule=AccountRule(kind="service", key="ADV-TM", account_code="4.3.3"),
            actor="Fiona Finance <fiona@northwind.example>",
        )
    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])

    handle = await begin_billing(system, project, period=period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None and result.invoice.erp == "tryton"
    tryton = system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)
    (booked,) = [b for b in await tryton.booked_invoices("PS-") if b.invoice_id == result.invoice.invoice_id]
    (line,) = booked.lines
    assert line.account_code == "4.3.3"
    assert {(v.dimension, v.code) for v in line.dimensions} == {
        ("project", project),
        ("customer", won.account_id),
    }
    # The ERP-side project was made at closed-won and is in the crosswalk.
    with system.database.session() as session:
        erp_project = find_external_id(
            session, entity="erp_project", canonical_key=f"kantata:{project}", system="tryton"
        )
    (work,) = await tryton.rpc.read("project.work", [int(erp_project or 0)], ["type", "name"])
    assert work["type"] == "project"
