"""The short chaos run (`python -m chaos --short`, what `make chaos` runs at full size): the whole stack as
`make run` starts it, with two workers and Tryton behind a fault proxy, shaken by every kind of vendor
fault, a worker SIGKILL during posting, a Temporal restart and a vendor outage, over both ERPs. It must end
with every deal paid, 0 duplicates, 0 unbilled, 0 lost, a clean reconciliation, and every fault kind
really injected (not a fair-weather pass); and it must leave nothing running behind it.

The run is a child process, as `make chaos` runs it: its processes are found afterwards by a marker in
their environment, which every child and grandchild inherits.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from activities.reconciliation import invoice_reference_prefix
from chaos.audit import Auditor, AuditResult
from chaos.temporal_waits import Runs
from chaos.workload import Workload, make_deals
from chaos.world import ChaosWorld, start_world
from devstack.story import Story, previous_period, working_days
from runs.client import connect_client
from runs.starts import ensure_feed_poller, ensure_payment_pollers
from sandboxes.kantata.seed import KantataSeeder, TimeLog
from sandboxes.xero.seed import XeroFinanceUser
from tests.e2e import test_stack_stops as stops

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

REPO = Path(__file__).resolve().parents[2]
# The run takes about two and a half minutes on two busy cores; the bound leaves room, not a target.
RUN_SECONDS = 330
FAULT_KINDS = (
    "server_error",
    "rate_limited",
    "timeout",
    "dropped",
    "reply_lost",
    "duplicate_event",
    "reordered_batch",
)


@pytest.mark.timeout(RUN_SECONDS + 60)
def test_the_short_chaos_run_ends_with_nothing_duplicated_unbilled_or_lost(
    tmp_path: Path, tryton_home: Path
) -> None:
    marker = uuid.uuid4().hex
    table, summary_path = tmp_path / "chaos.md", tmp_path / "chaos.json"
    env = {**os.environ, stops.MARKER: marker, "PSSYNC_TRYTON_HOME": str(tryton_home)}
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaos",
                "--short",
                "--data-dir",
                str(tmp_path / "data"),
                "--results",
                str(table),
                "--json",
                str(summary_path),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_SECONDS,
        )
    finally:
        leftovers = stops._marked(marker)
        for pid in leftovers:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
    output = run.stdout[-6000:] + run.stderr[-3000:]
    assert not leftovers, f"still running after the chaos run: {leftovers}"
    assert run.returncode == 0, output
    summary = json.loads(summary_path.read_text())

    assert summary["clean"] is True, output
    assert (summary["duplicates"], summary["unbilled"], summary["lost"]) == (0, 0, 0), output
    assert summary["reconciliation_findings"] == 0, output
    assert (summary["unpaid"], summary["stuck"], summary["mismatches"]) == (0, 0, 0), output
    # Both ERPs, each deal from closed won to paid.
    assert summary["deals"] == summary["deals_paid"] == 2, output
    assert summary["invoices"] == {"xero": 1, "tryton": 1}, output
    # Every kind of fault was injected, and each disruption happened.
    faults = summary["faults"]
    assert all(faults.get(kind, 0) > 0 for kind in FAULT_KINDS), faults
    assert summary["worker_kills"] == 1, output
    assert summary["temporal_restarts"] == 1, output
    [outage] = summary["outages"]
    assert outage["refused"] > 0, outage
    # Nothing of the stack is left listening.
    assert all(stops._free(port) for port in summary["ports"].values()), summary["ports"]
    written = table.read_text()
    for row in ("**duplicates** | **0**", "**unbilled entries** | **0**", "**lost events** | **0**"):
        assert row in written, written


# -- the audit itself: the zeros above mean something only if it sees what it looks for ---------------------


def test_the_audit_finds_a_second_customer_a_second_invoice_and_approved_work_left_unbilled(
    tmp_path: Path, tryton_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PSSYNC_TRYTON_HOME", str(tryton_home))
    world = start_world(tmp_path / "data", workers=1, say=lambda _: None)
    try:
        clean, damaged = asyncio.run(_one_deal_then_damage(world))
    finally:
        world.stop()

    assert (clean.duplicate_count, clean.unbilled_count, clean.lost_count) == (0, 0, 0), clean
    assert not clean.mismatches and not clean.unpaid and clean.invoices == {"xero": 1}, clean
    # One customer too many, one invoice too many (its missing posting and hours said, not counted again).
    assert damaged.duplicate_count == 2, damaged.duplicates
    assert any("2 xero customers" in d for d in damaged.duplicates), damaged.duplicates
    assert any("2 live xero invoices" in d for d in damaged.duplicates), damaged.duplicates
    assert damaged.unbilled_count == 1, damaged.unbilled
    assert len(damaged.unpaid) == 1, damaged.unpaid


async def _one_deal_then_damage(world: ChaosWorld) -> tuple[AuditResult, AuditResult]:
    """A UK deal played to paid in fair weather; then a person does what ps-sync must never do twice."""
    settings = world.stack.settings
    client = await connect_client(settings)
    runs = Runs(client)
    await ensure_feed_poller(client, settings, billing_settle_seconds=1, invoice_poll_interval_seconds=20)
    await ensure_payment_pollers(client, settings)
    story = Story(settings, client, say=lambda _: None, step_seconds=120)
    await story.prepare()
    period = previous_period(datetime.now(UTC).date())
    # Two days stay below the approval threshold: the run posts without waiting for finance.
    deals = make_deals(("UK",), (2,))
    workload = Workload(
        settings,
        runs,
        story,
        period=period,
        deal_seconds=150,
        say=lambda _: None,
        billing_started=lambda _: None,
        billing_finished=lambda _: None,
    )
    await workload.play_all(deals, 1)
    [deal] = deals
    assert deal.paid and deal.project_id and deal.erp_customer_id, deal
    auditor = Auditor(settings, runs, period)
    try:
        clean = await auditor.audit(deals)
        finance = XeroFinanceUser.from_settings(settings)
        try:
            await finance.create_customer(f"{deal.account_name} (again)", contact_number=deal.account_id)
            await finance.create_invoice(
                deal.erp_customer_id,
                [("Consulting", Decimal("8"), Decimal("150"), "OUTPUT2")],
                reference=invoice_reference_prefix(deal.project_id, period.value) + "by-hand",
            )
        finally:
            await finance.aclose()
        async with KantataSeeder.for_sandbox(settings.kantata_base_url) as kantata:
            # One of the project's people, on a day the deal did not log: approved after the invoice went out.
            [logged, *_] = await kantata.every("/time_entries", {"workspace_id": deal.project_id})
            day = working_days(period, 10)[-1]
            late = await kantata.log_time(
                deal.project_id, [TimeLog(user_id=str(logged["user_id"]), day=day, minutes=480, notes="late")]
            )
            await kantata.submit_and_approve(deal.project_id, late)
        damaged = await auditor.audit(deals)
    finally:
        await auditor.aclose()
    return clean, damaged
