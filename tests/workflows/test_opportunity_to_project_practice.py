"""Practice from deal to invoice line: a service of a practice makes a Kantata project filed under it, the
ERP-side project made at closed-won carries it as a dimension where the ERP tracks it (Tryton always; Xero
only where the entity chose practice as one of its two categories), and billed lines book it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from connectors.tryton.analytic import ROOTS
from connectors.tryton.connector import TrytonConnector
from devstack.story import EU_DEAL, previous_period, working_days
from devstack.tryton import TrytonServer
from runs.time_to_billing import TimeToBillingResult
from sandboxes.kantata.seed import TimeLog

from ..support.system import Sandboxes, System, running_system
from .billing_steps import approve_when_asked, begin_billing, contract_of, deal_for, log_approved, staff

ONE_DAY = 480


async def test_a_uk_project_of_a_practice_keeps_xeros_default_project_and_customer_tracking(
    ts_system: System,
) -> None:
    won = await deal_for(ts_system, service_code="DIG-TM", amount=Decimal("20000"))

    project = await ts_system.connectors.psa.get_project(won.project_id)
    contract = contract_of(ts_system, won.project_id)

    assert project.practice == "Digital"
    assert contract.erp_project is not None
    assert [v.dimension for v in contract.erp_project.dimensions] == ["project", "customer"]


@pytest.fixture
async def eu_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, tryton_server: TrytonServer
) -> AsyncIterator[System]:
    # The dev server: Tryton refuses invoices dated in the future, and the time-skipping server's clock runs
    # ahead of the real one once other tests have skipped time.
    async with running_system(dev_env.client, tmp_path, sandboxes, tryton=tryton_server) as system:
        yield system


async def test_an_eu_project_of_a_practice_gets_a_practice_analytic_account_its_lines_book_to(
    eu_system: System,
) -> None:
    system = eu_system
    won = await deal_for(system, service_code="DIG-TM", amount=Decimal("20000"), plan=EU_DEAL)
    project = won.project_id

    contract = contract_of(system, project)
    assert contract.erp_project is not None
    assert {(v.dimension, v.code) for v in contract.erp_project.dimensions} == {
        ("project", project),
        ("customer", won.account_id),
        ("practice", "DIGITAL"),
    }
    tryton = system.connectors.erps.by_system("tryton")
    assert isinstance(tryton, TrytonConnector)
    (account,) = await tryton.rpc.search_read(
        "analytic_account.account", [("code", "=", "DIGITAL"), ("type", "=", "normal")], ["root", "name"]
    )
    (root,) = await tryton.rpc.read("analytic_account.account", [account["root"]], ["code"])
    assert root["code"] == ROOTS["practice"][0] and account["name"] == "DIGITAL Digital"

    period = previous_period(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, working_days(period, 1)[0], ONE_DAY)])
    handle = await begin_billing(system, project, period=period)
    await approve_when_asked(handle)
    result: TimeToBillingResult = await handle.result()

    assert result.outcome == "posted" and result.invoice is not None
    (booked,) = [b for b in await tryton.booked_invoices("PS-") if b.invoice_id == result.invoice.invoice_id]
    (line,) = booked.lines
    assert ("practice", "DIGITAL") in {(v.dimension, v.code) for v in line.dimensions}
