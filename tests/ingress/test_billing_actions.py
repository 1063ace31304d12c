"""Bill now through the ingress and the CLI, on a real Temporal dev server, worker and sandboxes: finance or
the PMO bill a project's approved work to date mid-period, recorded against the verified caller."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

import cli
from canonical import Money, Period
from ingress.identity import mint_dev_token
from ledger.repository import audit_trail
from runs.time_to_billing import TimeToBillingResult
from sandboxes.kantata.seed import TimeLog

from ..support.system import System
from ..support.temporal import target_of
from ..workflows.billing_steps import approve_when_asked, deal_for, log_approved, staff, wait_for_stage

PRIYA = ("Priya PMO", "u-priya")
FIONA = ("Fiona Finance", "u-fiona")


def token(system: System, role: str, person: tuple[str, str] = PRIYA) -> str:
    name, subject = person
    return mint_dev_token(system.settings, name, role, subject=subject)


def bill_now(
    system: System, project: str, period: str, bearer: str | None, body: dict[str, Any] | None = None
) -> httpx.Response:
    assert system.ingress is not None
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return httpx.post(
        f"{system.ingress.url}/billing-runs/{project}/{period}/bill-now",
        json=body,
        headers=headers,
        timeout=60,
    )


def this_month() -> str:
    return Period.of(datetime.now(UTC).date()).value


def bill_now_audits(system: System, wf_id: str) -> list[dict[str, Any]]:
    with system.database.session() as session:
        return [e.detail for e in audit_trail(session, key=wf_id) if e.action == "bill_now"]


async def test_bill_now_needs_a_finance_or_pmo_token(system: System) -> None:
    assert bill_now(system, "30199999", this_month(), None).status_code == 401
    assert bill_now(system, "30199999", this_month(), "forged").status_code == 401
    refused = bill_now(system, "30199999", this_month(), token(system, "ops"))
    assert refused.status_code == 403 and "finance" in refused.text and "pmo" in refused.text


async def test_bill_now_refuses_an_actor_in_the_body_a_future_period_and_an_unknown_project(
    system: System,
) -> None:
    pmo = token(system, "pmo")
    named = bill_now(system, "30199999", this_month(), pmo, {"actor": "someone else"})
    assert named.status_code == 422 and "bearer token" in named.text
    assert bill_now(system, "30199999", "2026-13", pmo).status_code == 422
    future = bill_now(system, "30199999", "2999-01", pmo)
    assert future.status_code == 422 and "has not begun" in future.text
    unknown = bill_now(system, "30199999", this_month(), pmo)
    assert unknown.status_code == 404 and "30199999" in unknown.text


async def test_the_pmo_bills_a_projects_work_to_date_mid_period_and_the_run_records_who_asked(
    system: System,
) -> None:
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = Period.of(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, period.first_day, 480)])

    # Time and materials bills no milestones: naming one is a conflict, and nothing is started.
    conflict = bill_now(system, project, period.value, token(system, "pmo"), {"milestone_id": "m-1"})
    assert conflict.status_code == 409 and "not by milestone" in conflict.text

    accepted = bill_now(system, project, period.value, token(system, "pmo"))
    assert accepted.status_code == 202
    body = accepted.json()
    assert body["requested_by"] == "Priya PMO <u-priya>" and body["milestone_id"] is None
    handle = system.client.get_workflow_handle(body["workflow_id"], result_type=TimeToBillingResult)
    waiting = await wait_for_stage(handle, "awaiting_approval")
    assert waiting.total == Money.of("800.00", "GBP")
    await approve_when_asked(handle, "finance")
    result = await handle.result()

    assert result.outcome == "posted" and result.period == period.value and result.time_entries_billed == 1
    (asked,) = bill_now_audits(system, handle.id)
    assert asked["actor"] == "Priya PMO <u-priya>" and asked["period_closed"] is False


async def test_the_cli_bills_now_for_finance_and_refuses_other_roles(
    system: System,
    dev_env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = (await deal_for(system, service_code="ADV-TM", amount=Decimal("40000"))).project_id
    period = Period.of(datetime.now(UTC).date())
    person = await staff(system, project, "Consultant")
    await log_approved(system, project, [TimeLog(person.user_id, period.first_day, 480)])
    monkeypatch.setenv("PSSYNC_TEMPORAL_ADDRESS", target_of(dev_env))
    monkeypatch.setenv("PSSYNC_DATABASE_URL", system.settings.database_url)
    monkeypatch.setenv("PSSYNC_TASK_QUEUE", system.task_queue)
    monkeypatch.delenv("PSSYNC_TOKEN", raising=False)

    def run(*argv: str) -> int:
        args = cli.build_parser().parse_args(argv)
        code: int = args.func(args)
        return code

    assert await asyncio.to_thread(run, "bill-now", project, period.value) == 2
    assert (
        await asyncio.to_thread(run, "bill-now", project, period.value, "--token", token(system, "ops")) == 2
    )
    assert "needs one of" in capsys.readouterr().err
    finance = token(system, "finance", FIONA)
    assert await asyncio.to_thread(run, "bill-now", "30199999", period.value, "--token", finance) == 1
    assert "30199999" in capsys.readouterr().err

    assert await asyncio.to_thread(run, "bill-now", project, period.value, "--token", finance) == 0
    printed = capsys.readouterr().out
    assert "Fiona Finance <u-fiona>" in printed
    handle = system.client.get_workflow_handle(printed.rsplit(": ", 1)[1].strip())
    await wait_for_stage(handle, "awaiting_approval")
    (asked,) = bill_now_audits(system, handle.id)
    assert asked["actor"] == "Fiona Finance <u-fiona>"
    await handle.terminate("test finished")
