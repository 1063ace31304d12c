"""Kantata down while billing runs need it: after the threshold one integration-support exception names the
vendor and the operation; each run's status (JSON endpoint and ops page) shows its attempt and last error; a
second failing run joins the same item; faults off, the runs complete and ps-sync resolves the item itself.

Real Temporal dev server (the product's retry policy, in real time), worker, ingress and sandboxes; only the
threshold is lowered, in settings, so the outage is noticed after three attempts rather than five.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from activities.vendor_incidents import PROCESS, IncidentRecord, incident_record
from devstack.story import Story, previous_period
from ledger.audit import audit_trail
from ledger.exception_queue import list_exceptions
from ledger.records import ExceptionItem
from ledger.vocab import ExceptionStatus
from runs.time_to_billing import TimeToBillingResult
from sandboxes.faults import FaultConfig

from ..support.system import Sandboxes, System, running_system, set_faults
from ..support.temporal import target_of
from .helpers import eventually, project_from_a_won_deal, start_billing

# Kantata answers 503 to the project-membership reads a billing run makes before it collects anything; the
# run reads them in `read_project_resources` (in `get_project_billing_setup` before the reads went apart).
KANTATA_DOWN = FaultConfig(server_error_rate=1.0, path_prefixes=("/api/v1/participations",))
SETUP_READS = ("read_project_resources", "get_project_billing_setup")


@pytest.fixture
async def system(dev_env: WorkflowEnvironment, tmp_path: Path, sandboxes: Sandboxes) -> AsyncIterator[System]:
    async with running_system(
        dev_env.client,
        tmp_path,
        sandboxes,
        temporal_target=target_of(dev_env),
        settings_changes={"vendor_trouble_attempts": 3, "vendor_trouble_recheck_seconds": 0.5},
    ) as running:
        yield running


def _vendor_items(system: System) -> list[ExceptionItem]:
    with system.database.session() as session:
        return list_exceptions(session, process=PROCESS)


def _ops_headers(system: System) -> dict[str, str]:
    token = next(token for token, role in system.settings.token_roles().items() if role == "ops")
    return {"Authorization": f"Bearer {token}"}


async def _incident(system: System, runs: int) -> tuple[ExceptionItem, IncidentRecord]:
    async def probe() -> tuple[ExceptionItem, IncidentRecord] | None:
        for item in _vendor_items(system):
            record = incident_record(item)
            if item.status == ExceptionStatus.OPEN and record is not None and len(record.runs) >= runs:
                return item, record
        return None

    found: tuple[ExceptionItem, IncidentRecord] = await eventually(
        probe, seconds=90, what=f"a vendor incident with {runs} run(s)"
    )
    return found


async def _status(system: System, workflow_id: str) -> dict[str, Any]:
    assert system.ingress is not None
    async with httpx.AsyncClient(base_url=system.ingress.url, timeout=30) as http:
        response = await http.get(f"/runs/{workflow_id}/status", headers=_ops_headers(system))
    assert response.status_code == 200, response.text
    status: dict[str, Any] = response.json()
    return status


async def test_a_vendor_outage_is_one_exception_shown_on_every_waiting_run_and_resolved_when_it_ends(
    system: System,
) -> None:
    story = Story(system.settings, system.client, say=lambda _: None, step_seconds=120)
    await story.prepare()
    period = previous_period(datetime.now(UTC).date())
    first = await project_from_a_won_deal(system, story)
    second = await project_from_a_won_deal(system, story)
    for project in (first, second):
        await story.log_and_approve_time(project.project_id, period, days=1)
    assert _vendor_items(system) == []

    await set_faults(system.sandboxes.kantata.url, KANTATA_DOWN)
    run_a = await start_billing(system, first.project_id, period=period)
    item, record = await _incident(system, runs=1)

    # One integration-support item naming the vendor, the operation and the failure, with attempts counted.
    operation = record.operation
    assert operation in SETUP_READS and [found.id for found in _vendor_items(system)] == [item.id]
    assert item.dedupe_key == f"vendor-trouble:kantata:{operation}" and item.owner == "integration_support"
    assert (record.vendor, record.error_type) == ("kantata", "Unavailable")
    assert record.runs == [run_a.id] and record.failed_attempts >= 3 and record.highest_attempt >= 3
    assert record.status_code is not None and record.status_code >= 500 and record.last_error
    assert item.reason.startswith(f"kantata {operation} keeps failing: ")
    assert "1 run waiting; last error" in item.reason

    # The run's status: the stage from its query, the call it retries with its attempt and last error.
    status = await _status(system, run_a.id)
    assert status["status"] == "RUNNING" and status["workflow_type"] == "TimeToBilling"
    assert status["stage"] == "settling" and status["stage_from"] == "query"
    [pending] = [call for call in status["pending_activities"] if call["activity_type"] == operation]
    assert pending["attempt"] >= 3 and pending["vendor"] == "kantata"
    assert pending["status_code"] == record.status_code and pending["last_failure_type"] == "Unavailable"
    assert pending["last_failure"].startswith("kantata: ") and pending["first_scheduled_at"] is not None
    [retrying] = status["retrying"]
    assert retrying.startswith(f"retrying {operation} (attempt ") and " since " in retrying
    assert retrying.endswith(f"): {pending['last_failure']}")

    # The ops page: the vendor failing, first, and the run's retry beside it in the billing runs.
    assert system.ingress is not None
    basic = base64.b64encode(f"ops:{_ops_headers(system)['Authorization'][7:]}".encode()).decode()

    async def page_shows_the_retry() -> str | None:
        async with httpx.AsyncClient(base_url=system.ingress.url, timeout=30) as browser:  # type: ignore[union-attr]
            response = await browser.get("/ops", headers={"Authorization": f"Basic {basic}"})
        assert response.status_code == 200
        return response.text if f"retrying {operation} (attempt " in response.text else None

    html: str = await eventually(page_shows_the_retry, seconds=60, what="the ops page to show the retry")
    assert '<h2 class="warn">Vendors failing</h2>' in html
    assert "<strong>kantata</strong>" in html and f"<td>{operation}</td>" in html
    assert run_a.id.replace(":", "%3A") in html
    assert html.index("Vendors failing") < html.index("Billing runs not yet at the invoice")

    # A second run failing on the same call joins the incident: still one item.
    run_b = await start_billing(system, second.project_id, period=period)
    item, record = await _incident(system, runs=2)
    assert record.runs == [run_a.id, run_b.id] and item.reason.count("2 runs waiting") == 1
    assert [found.id for found in _vendor_items(system)] == [item.id]

    # Kantata answers again: both runs go on to their invoices and ps-sync resolves the item itself.
    await set_faults(system.sandboxes.kantata.url, FaultConfig())
    for run, project in ((run_a, first), (run_b, second)):
        await story.approve_when_asked(run.id, project.project_id, period)
        billed: TimeToBillingResult = await story.result(run.id, TimeToBillingResult)
        assert billed.outcome == "posted"

    async def resolved() -> ExceptionItem | None:
        [found] = _vendor_items(system)
        return found if found.status == ExceptionStatus.RESOLVED else None

    closed: ExceptionItem = await eventually(resolved, seconds=30, what="the incident to be resolved")
    assert closed.id == item.id and closed.resolution is not None
    assert closed.resolution.actor == "ps-sync" and closed.resolution.note is not None
    assert closed.resolution.note.startswith(f"kantata {operation} succeeded again at ")
    with system.database.session() as session:
        trail = audit_trail(session, key=item.dedupe_key)
    assert [entry.action for entry in trail] == ["vendor_trouble_resolved", "vendor_trouble_opened"]
    assert all(entry.actor == "ps-sync" for entry in trail)
    after = await _status(system, run_a.id)
    assert after["status"] == "COMPLETED" and after["pending_activities"] == [] and after["retrying"] == []
    # A closed run answers no query here: its stage is the one its search attribute last recorded.
    assert after["stage_from"] == "search_attribute" and after["stage"]
