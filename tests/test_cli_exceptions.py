"""`pssync exceptions`, `pssync reconcile` and `pssync schedules apply`, run as a person runs them: the CLI
against a real Temporal dev server, the worker, the ledger and the sandboxes, configured by environment."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from cli import main
from devstack.story import BILLING_MODEL, SERVICE_CODE, Story, previous_period
from ledger.repository import get_exception, list_exceptions
from runs.opportunity_to_project import OpportunityToProjectResult
from runs.schedules import (
    alert_scan_schedule_id,
    month_end_schedule_id,
    payables_scan_schedule_id,
    reconciliation_schedule_id,
    reference_sync_schedule_id,
)
from sandboxes.salesforce.seed import SalesforceSeeder

from .support.system import Sandboxes, System, running_system
from .support.temporal import target_of
from .workflows.helpers import eventually, project_from_a_won_deal


@pytest.fixture
async def cli_system(
    dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client, tmp_path, sandboxes, temporal_target=target_of(dev_env)
    ) as system:
        monkeypatch.setenv("PSSYNC_TEMPORAL_ADDRESS", target_of(dev_env))
        monkeypatch.setenv("PSSYNC_DATABASE_URL", system.settings.database_url)
        monkeypatch.setenv("PSSYNC_TASK_QUEUE", system.settings.task_queue)
        yield system


# The worker's log lines share the process's stdout with the CLI in these tests.
_LOG_LINE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \[")


async def run_cli(*argv: str) -> tuple[int, str, str]:
    """The CLI in a thread of its own (it runs its own event loop, as from a shell): exit code, out, err."""

    def call(args: Sequence[str]) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(list(args))
                code = 0
            except SystemExit as exit_:
                code = int(exit_.code or 0)
        printed = "\n".join(line for line in out.getvalue().splitlines() if not _LOG_LINE.match(line))
        return code, printed, err.getvalue()

    return await asyncio.to_thread(call, argv)


async def parked_deal(system: System) -> int:
    """An incomplete deal's sales-ops exception id (the deal reaches ps-sync through the ingress)."""
    async with SalesforceSeeder(system.settings.salesforce_base_url) as salesforce:
        deal = await salesforce.create_customer_deal(
            account_name=f"Soylent {uuid.uuid4().hex[:8]}",
            country="GB",
            service_code=SERVICE_CODE,
            billing_model=BILLING_MODEL,
            omit=("Tax_Code__c",),
        )
        await salesforce.close_won(deal.opportunity_id)

    def raised() -> int | None:
        with system.database.session() as session:
            items = list_exceptions(session, process="opportunity_to_project", status="open")
        return next(
            (i.id for i in items if i.record["opportunity_id"][:15] == deal.opportunity_id[:15]), None
        )

    async def probe() -> int | None:
        return await asyncio.to_thread(raised)

    found: int = await eventually(probe, what="the sales-ops exception")
    return found


async def test_exceptions_list_prints_each_item_with_owner_status_age_and_reason(cli_system: System) -> None:
    exception_id = await parked_deal(cli_system)

    code, out, _ = await run_cli("exceptions", "list", "--owner", "sales_ops")

    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:5] == ["id", "owner", "status", "age", "tries"]
    (row,) = [r for r in rows if r.split()[0] == str(exception_id)]
    assert row.split()[1:3] == ["sales_ops", "open"] and "tax_code" in row


async def test_exceptions_list_with_an_unknown_owner_says_so(cli_system: System) -> None:
    code, _, err = await run_cli("exceptions", "list", "--owner", "marketing")
    assert code == 2 and "owner" in err


async def test_exceptions_retry_with_wait_reports_the_run_went_through_once_the_deal_is_fixed(
    cli_system: System,
) -> None:
    await Story(cli_system.settings, cli_system.client, say=lambda _: None).prepare()
    exception_id = await parked_deal(cli_system)
    with cli_system.database.session() as session:
        item = get_exception(session, exception_id=exception_id)
    assert item is not None
    async with SalesforceSeeder(cli_system.settings.salesforce_base_url) as salesforce:
        await salesforce.update("Opportunity", item.record["opportunity_id"], {"Tax_Code__c": "OUTPUT2"})

    code, out, err = await run_cli("exceptions", "retry", str(exception_id), "--by", "sales.ops", "--wait")

    assert code == 0, err
    assert f"exception {exception_id} retrying: exception-action:" in out
    assert "resolved:" in out
    assert item.workflow_id is not None
    handle = cli_system.client.get_workflow_handle(item.workflow_id, result_type=OpportunityToProjectResult)
    assert (await handle.result()).project_id


async def test_exceptions_skip_requires_a_reason_and_records_it(cli_system: System) -> None:
    exception_id = await parked_deal(cli_system)

    with pytest.raises(SystemExit) as refused, contextlib.redirect_stderr(io.StringIO()):
        main(["exceptions", "skip", str(exception_id), "--by", "sales.ops"])
    assert refused.value.code == 2
    code, out, _ = await run_cli(
        "exceptions", "skip", str(exception_id), "--by", "sales.ops", "--reason", "lost"
    )
    assert code == 0 and out.strip() == f"exception {exception_id} skipped"
    code, _, err = await run_cli("exceptions", "retry", str(exception_id), "--by", "sales.ops")
    assert code == 1 and "skipped" in err


async def test_exceptions_fix_refuses_a_field_the_process_cannot_correct(cli_system: System) -> None:
    exception_id = await parked_deal(cli_system)
    code, _, err = await run_cli(
        "exceptions", "fix", str(exception_id), "--by", "sales.ops", "--set", "colour=blue"
    )
    assert code == 1 and "colour" in err


async def test_reconcile_prints_the_table_for_the_period(cli_system: System) -> None:
    story = Story(cli_system.settings, cli_system.client, say=lambda _: None)
    await story.prepare()
    created = await project_from_a_won_deal(cli_system, story)
    period = previous_period(datetime.now(UTC).date())
    await story.log_and_approve_time(created.project_id, period, days=1)

    code, out, err = await run_cli("reconcile", "--period", period.value, "--entity", "UK")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["entity", "period", "project"]
    (row,) = [line for line in lines if line.split()[:3] == ["UK", period.value, created.project_id]]
    # Two approved entries, not yet billed: pending while the period's billing may still run.
    assert row.split()[:5] == ["UK", period.value, created.project_id, "GBP", "2"]
    assert row.split()[-1] in ("pending", "differs")


async def test_schedules_apply_twice_creates_then_updates_every_schedule(cli_system: System) -> None:
    settings = cli_system.settings
    try:
        first = await run_cli("schedules", "apply")
        second = await run_cli("schedules", "apply")
        assert first[0] == second[0] == 0
        # Four for the firm, and a month-end close per legal entity.
        expected = 4 + len(settings.entities)
        assert [line.split(":")[0] for line in first[1].splitlines()] == ["created"] * expected
        assert [line.split(":")[0] for line in second[1].splitlines()] == ["updated"] * expected
        assert reference_sync_schedule_id(settings) in second[1]
        assert reconciliation_schedule_id(settings) in second[1]
        assert alert_scan_schedule_id(settings) in second[1]
        assert payables_scan_schedule_id(settings) in second[1]
        for entity in settings.entities:
            assert month_end_schedule_id(settings, entity.code) in second[1]
    finally:
        scheduled = (
            reference_sync_schedule_id(settings),
            reconciliation_schedule_id(settings),
            alert_scan_schedule_id(settings),
            payables_scan_schedule_id(settings),
            *(month_end_schedule_id(settings, entity.code) for entity in settings.entities),
        )
        for schedule_id in scheduled:
            with contextlib.suppress(Exception):
                await cli_system.client.get_schedule_handle(schedule_id).delete()
